// End to end in a fleet: one real etcd, two xensim hosts whose xenchands are
// in it, guests with xenchan-agent on both, and the provisioner binary with
// --fleet. Each guest is provisioned exactly once (its `provisioned` replies
// counted in its channel); a guest migrated to the other host and
// reconnected there is found already provisioned, not provisioned again; a
// host whose xenchand stops loses its loop without stopping the other
// host's, and gets it back when it returns.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// fleetGuest is one guest with its agent.
type fleetGuest struct {
	name, uuid, channel, target string
	agent                       *xenchantest.Process
}

// pollUntil calls probe until it reports true, failing the test after a
// minute (with the provisioner's log).
func pollUntil(t *testing.T, what string, p *xenchantest.Process, probe func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !probe() {
		if time.Now().After(deadline) {
			log := ""
			if p != nil {
				log = p.Log()
			}
			t.Fatalf("timed out waiting for %s; provisioner log:\n%s", what, log)
		}
		time.Sleep(20 * time.Millisecond) // polling a server's state with a deadline
	}
}

// addFleetGuest writes the spec of guest name on host h (by UUID if byUUID,
// else by name), creates its durable agent channel and starts its agent.
func addFleetGuest(ctx context.Context, t *testing.T, h *xenchantest.Host, c *xenchan.Client, specs, name string, byUUID bool) *fleetGuest {
	t.Helper()
	var d *xenchanpb.Domain
	pollUntil(t, name+" on its xenchand", nil, func() bool {
		var err error
		d, err = c.GetDomain(ctx, xenchan.DomainName(name))
		return err == nil
	})
	key := name
	if byUUID {
		key = d.GetUuid()
	}
	spec := fmt.Sprintf(`{"hostname":"host-%s","files":[{"path":"/etc/motd","content":"aGk=","mode":"0644"}]}`, name)
	if err := os.WriteFile(filepath.Join(specs, key+".json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName(name),
		ChannelId: "org.xenchan.agent.0", WaitUntilConnected: true,
		Config: &xenchanpb.ChannelConfig{Lifetime: xenchanpb.ChannelLifetime_CHANNEL_LIFETIME_DURABLE}})
	if err != nil {
		t.Fatalf("CreateChannel %s: %v", name, err)
	}
	g := &fleetGuest{name: name, uuid: d.GetUuid(), channel: ch.GetName(), target: t.TempDir()}
	g.agent = h.StartAgent(name, g.target)
	if !g.agent.WaitForLog("(raw)", 30*time.Second) {
		t.Fatalf("agent of %s:\n%s", name, g.agent.Log())
	}
	return g
}

// logLine is how the provisioner logs msg about domain uuid on host.
func logLine(msg, host, uuid string) string {
	return fmt.Sprintf("msg=%q host=%s domain=%s", msg, host, uuid)
}

func TestFleetProvisionsEachGuestOnceAcrossHosts(t *testing.T) {
	etcd := xenchantest.StartEtcd(t)
	a := xenchantest.StartFleetHost(t, etcd, "host-a", []string{"vm-a1", "vm-a2"})
	b := xenchantest.StartFleetHost(t, etcd, "host-b", []string{"vm-b1"})
	bin := buildProvisioner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ca, err := xenchan.DialUnix(ctx, a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := xenchan.DialUnix(ctx, b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	specs := t.TempDir()
	a1 := addFleetGuest(ctx, t, a, ca, specs, "vm-a1", true)
	a2 := addFleetGuest(ctx, t, a, ca, specs, "vm-a2", false)
	b1 := addFleetGuest(ctx, t, b, cb, specs, "vm-b1", true)

	// One limit for the whole controller: a single worker serves both hosts.
	p := xenchantest.Start(t, []string{bin, "--fleet", "unix://" + a.Socket, "--specs", specs, "--concurrency", "1"})
	waitForLogCount(t, p, `msg="provisioned"`, 3)
	for _, w := range []struct {
		g    *fleetGuest
		host string
		c    *xenchan.Client
	}{{a1, "host-a", ca}, {a2, "host-a", ca}, {b1, "host-b", cb}} {
		if !strings.Contains(p.Log(), logLine("provisioned", w.host, w.g.uuid)) {
			t.Errorf("%s not provisioned on %s:\n%s", w.g.name, w.host, p.Log())
		}
		if n := replies(t, w.c, w.g.channel); n != 1 {
			t.Errorf("%s provisioned %d times", w.g.name, n)
		}
		if b, err := os.ReadFile(filepath.Join(w.g.target, "etc/hostname")); err != nil || string(b) != "host-"+w.g.name+"\n" {
			t.Errorf("%s hostname %q, %v", w.g.name, b, err)
		}
	}

	// vm-a1 migrates to host-b; its agent comes up there with the same disk
	// (target root). The controller finds it on host-b, asks its facts and
	// leaves it alone.
	// host-b re-creates the channel from its declaration in etcd: wait
	// until it is there (docs/FLEET.md, "A domain that arrives from another
	// host").
	pollUntil(t, "vm-a1's declaration in etcd", p, func() bool {
		keys, err := etcd.Keys("/xenchan/v1/declarations/" + a1.uuid + "/org.xenchan.agent.0")
		return err == nil && len(keys) == 1
	})
	a1.agent.Kill()
	if err := a.Migrate("vm-a1", b); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "vm-a1's agent channel connected on host-b", p, func() bool {
		c, err := cb.GetChannel(ctx, a1.channel)
		return err == nil && c.GetState() == xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED
	})
	a1.agent = b.StartAgent("vm-a1", a1.target)
	waitForLogCount(t, p, logLine("already provisioned", "host-b", a1.uuid), 1)
	if n := replies(t, cb, a1.channel); n != 0 {
		t.Errorf("vm-a1 provisioned %d times again on host-b:\n%s", n, p.Log())
	}
	if n := strings.Count(p.Log(), `msg="provisioned"`); n != 3 {
		t.Errorf("%d provisionings after the migration, want 3:\n%s", n, p.Log())
	}

	// host-b's xenchand stops: it leaves the fleet and its loop ends;
	// host-a's loop goes on and provisions a new guest.
	b.Server.Stop()
	waitForLogCount(t, p, `msg="host left the fleet; its loop stopped" host=host-b`, 1)
	a.CreateDomain("vm-a3")
	a3 := addFleetGuest(ctx, t, a, ca, specs, "vm-a3", false)
	waitForLogCount(t, p, logLine("provisioned", "host-a", a3.uuid), 1)
	if n := replies(t, ca, a3.channel); n != 1 {
		t.Errorf("vm-a3 provisioned %d times", n)
	}

	// host-b comes back: a new loop, and its two guests are already
	// provisioned.
	b.StartServer()
	waitForLogCount(t, p, `msg="host loop started" host=host-b`, 2)
	waitForLogCount(t, p, logLine("already provisioned", "host-b", b1.uuid), 1)
	waitForLogCount(t, p, logLine("already provisioned", "host-b", a1.uuid), 2)
	if n := strings.Count(p.Log(), `msg="provisioned"`); n != 4 {
		t.Errorf("%d provisionings in all, want 4:\n%s", n, p.Log())
	}
	for _, g := range []*fleetGuest{a2, a3} {
		if n := replies(t, ca, g.channel); n != 1 {
			t.Errorf("%s provisioned %d times", g.name, n)
		}
	}

	p.Stop()
	if code := p.ExitCode(); code != 0 || !strings.Contains(p.Log(), `msg="stopped"`) {
		t.Errorf("SIGTERM: exit %d:\n%s", code, p.Log())
	}
}
