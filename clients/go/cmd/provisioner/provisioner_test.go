// End to end: 20 simulated guests with xenchan-agent, the real xenchand,
// and the provisioner binary, killed (SIGKILL) mid-way and restarted; every
// guest must be provisioned exactly once, counted by the agent's
// `provisioned` replies retained in each channel.

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

const guests = 20

func buildProvisioner(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "provisioner")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replies counts the agent's `provisioned` replies in the channel's output.
func replies(t *testing.T, c *xenchan.Client, ch string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.Read(ctx, ch, xenchan.ReadOptions{})
	var out strings.Builder
	for {
		item, err := it.Next()
		if err == xenchan.Done {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", ch, err)
		}
		out.Write(item.Data.GetData())
	}
	return strings.Count(out.String(), `"op":"provisioned"`)
}

func TestProvisionsTwentyGuestsExactlyOnceAcrossRestarts(t *testing.T) {
	h := xenchantest.StartHost(t)
	bin := buildProvisioner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := xenchan.DialUnix(ctx, h.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	specs, state := t.TempDir(), t.TempDir()
	names := make([]string, guests)
	targets := make([]string, guests)
	chans := make([]string, guests)
	addGuest := func(i int) {
		names[i] = fmt.Sprintf("vm%02d", i)
		h.CreateDomain(names[i])
		// xenchand learns of the domain from xenstore's @introduceDomain:
		// poll for it with a deadline.
		var d *xenchanpb.Domain
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if d, err = c.GetDomain(ctx, xenchan.DomainName(names[i])); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		// Half the specs by UUID, half by name.
		key := names[i]
		if i%2 == 0 {
			key = d.GetUuid()
		}
		spec := fmt.Sprintf(`{"hostname":"host-%02d","ssh_authorized_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuestKey%02d ops@ctl"],"files":[{"path":"/etc/motd","content":%q,"mode":"0644"}]}`,
			i, i, base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("welcome to %s\n", names[i]))))
		if err := os.WriteFile(filepath.Join(specs, key+".json"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		ch, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName(names[i]),
			ChannelId: "org.xenchan.agent.0", WaitUntilConnected: true})
		if err != nil {
			t.Fatalf("CreateChannel %s: %v", names[i], err)
		}
		chans[i] = ch.GetName()
		targets[i] = t.TempDir()
		agent := h.StartAgent(names[i], targets[i])
		if !agent.WaitForLog("(raw)", 30*time.Second) {
			t.Fatalf("agent of %s:\n%s", names[i], agent.Log())
		}
	}
	run := func() *xenchantest.Process {
		return xenchantest.Start(t, []string{bin, "--target", "unix://" + h.Socket, "--specs", specs, "--state", state, "--concurrency", "3"})
	}
	provisioned := func() int {
		n := 0
		for i := range chans {
			if chans[i] != "" {
				if b, err := os.ReadFile(filepath.Join(targets[i], "etc/hostname")); err == nil && strings.TrimSpace(string(b)) == fmt.Sprintf("host-%02d", i) {
					n++
				}
			}
		}
		return n
	}
	waitFor := func(want int, p *xenchantest.Process) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for provisioned() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d provisioned; provisioner log:\n%s", provisioned(), want, p.Log())
			}
			time.Sleep(20 * time.Millisecond) // polling files with a deadline
		}
	}

	for i := 0; i < guests/2; i++ {
		addGuest(i)
	}
	first := run()
	waitFor(guests/2, first)
	// The rest connect while it runs; it is killed mid-way through them.
	for i := guests / 2; i < guests; i++ {
		addGuest(i)
		if i == guests/2+3 {
			first.Kill()
		}
	}
	second := run()
	waitFor(guests, second)
	// A third run (a restart after everything is done) provisions nothing.
	second.Stop()
	if code := second.ExitCode(); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	third := run()
	if !third.WaitForLog("msg=\"synced\"", time.Minute) {
		t.Fatalf("third run did not sync:\n%s", third.Log())
	}
	deadline := time.Now().Add(time.Minute)
	for strings.Count(third.Log(), "already provisioned") < guests && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	third.Stop()
	for i := range chans {
		if n := replies(t, c, chans[i]); n != 1 {
			t.Errorf("%s provisioned %d times; logs:\n%s\n%s", names[i], n, first.Log(), second.Log())
		}
		motd, err := os.ReadFile(filepath.Join(targets[i], "etc/motd"))
		if err != nil || string(motd) != fmt.Sprintf("welcome to %s\n", names[i]) {
			t.Errorf("%s motd %q, %v", names[i], motd, err)
		}
	}
	if n := strings.Count(third.Log(), "already provisioned"); n != guests {
		t.Errorf("third run: %d already provisioned, want %d:\n%s", n, guests, third.Log())
	}
	if strings.Contains(third.Log(), "msg=\"provisioned\"") {
		t.Errorf("third run provisioned again:\n%s", third.Log())
	}
}
