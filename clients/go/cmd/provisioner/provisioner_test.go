// End to end: 20 simulated guests with xenchan-agent, the real xenchand,
// and the provisioner binary, killed (SIGKILL) mid-way and restarted; every
// guest must be provisioned exactly once, counted by the agent's
// `provisioned` replies retained in each channel. Then a new controller
// (another working directory and copy of the specs: nothing of the old one)
// provisions nothing, and one with a changed spec and a reinstalled guest
// provisions exactly those two again.

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
	specs := t.TempDir()
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
		return xenchantest.Start(t, []string{bin, "--target", "unix://" + h.Socket, "--specs", specs, "--concurrency", "3"})
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
	second.Stop()
	if code := second.ExitCode(); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	// A new controller host: its own working directory and a copy of the
	// specs, nothing else. The guests' facts say what is applied.
	specs = copyDir(t, specs)
	third := runIn(t, bin, h.Socket, specs)
	waitForLogCount(t, third, "already provisioned", guests)
	third.Stop()
	for i := range chans {
		if n := replies(t, c, chans[i]); n != 1 {
			t.Errorf("%s provisioned %d times; logs:\n%s\n%s\n%s", names[i], n, first.Log(), second.Log(), third.Log())
		}
		motd, err := os.ReadFile(filepath.Join(targets[i], "etc/motd"))
		if err != nil || string(motd) != fmt.Sprintf("welcome to %s\n", names[i]) {
			t.Errorf("%s motd %q, %v", names[i], motd, err)
		}
	}
	if strings.Contains(third.Log(), "msg=\"provisioned\"") {
		t.Errorf("the new controller provisioned again:\n%s", third.Log())
	}

	// vm00's spec changes and vm01 is reinstalled (its agent's record is
	// gone): exactly those two are provisioned once more.
	key0 := names[0]
	if _, err := os.Stat(filepath.Join(specs, key0+".json")); err != nil {
		d, err := c.GetDomain(ctx, xenchan.DomainName(names[0]))
		if err != nil {
			t.Fatal(err)
		}
		key0 = d.GetUuid()
	}
	changed := `{"hostname":"host-00-v2"}`
	if err := os.WriteFile(filepath.Join(specs, key0+".json"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(targets[1], "var/lib/xenchan-agent/provisioned.json")); err != nil {
		t.Fatal(err)
	}
	fourth := runIn(t, bin, h.Socket, specs)
	waitForLogCount(t, fourth, "msg=\"provisioned\"", 2)
	waitForLogCount(t, fourth, "already provisioned", guests-2)
	fourth.Stop()
	for i := range chans {
		want := 1
		if i < 2 {
			want = 2
		}
		if n := replies(t, c, chans[i]); n != want {
			t.Errorf("%s provisioned %d times, want %d; log:\n%s", names[i], n, want, fourth.Log())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(targets[0], "etc/hostname")); string(b) != "host-00-v2\n" {
		t.Errorf("vm00 hostname %q after the spec changed", b)
	}
	if n := strings.Count(fourth.Log(), "msg=\"provisioned\""); n != 2 {
		t.Errorf("fourth run provisioned %d guests, want 2:\n%s", n, fourth.Log())
	}
}

// runIn starts the provisioner in a fresh working directory.
func runIn(t *testing.T, bin, socket, specs string) *xenchantest.Process {
	t.Helper()
	p := xenchantest.StartIn(t, t.TempDir(), []string{bin, "--target", "unix://" + socket, "--specs", specs, "--concurrency", "3"})
	if !p.WaitForLog("msg=\"synced\"", time.Minute) {
		t.Fatalf("the provisioner did not sync:\n%s", p.Log())
	}
	return p
}

// waitForLogCount waits (at most a minute) until text appears n times in
// p's log; fewer fails the test.
func waitForLogCount(t *testing.T, p *xenchantest.Process, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.Count(p.Log(), text) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a log with a deadline
	}
	if got := strings.Count(p.Log(), text); got < n {
		t.Fatalf("%q %d times, want %d:\n%s", text, got, n, p.Log())
	}
}

// copyDir copies the regular files of dir into a new temporary directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
