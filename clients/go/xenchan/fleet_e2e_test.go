// End-to-end tests of fleet resolution against real processes: one etcd,
// two xensim hosts whose xenchands are in the fleet (host-a runs vm-a and
// vm-m, host-b runs vm-b with the real xenchan-agent), and a third xenchand
// outside any fleet.

package xenchan_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

const logChannel = "org.xenchan.log.0"

// until calls probe until it reports true (an answer a server learns
// asynchronously: etcd's records reach every xenchand's view through a
// watch), failing the test after a minute.
func until(t *testing.T, what string, probe func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !probe() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFleet(t *testing.T) {
	etcd := xenchantest.StartEtcd(t)
	a := xenchantest.StartFleetHost(t, etcd, "host-a", []string{"vm-a", "vm-m"})
	b := xenchantest.StartFleetHost(t, etcd, "host-b", []string{"vm-b"})
	lone := xenchantest.StartHost(t)
	ctx := testContext(t)
	fast := xenchan.WithRetryPolicy(xenchan.RetryPolicy{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Multiplier: 2, MaxAttempts: 60})
	fleet, err := xenchan.DialFleet(ctx, "unix://"+a.Socket, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()

	// Both hosts registered (the watch rides out FLEET_UNAVAILABLE).
	w := fleet.Watch(ctx, xenchan.FleetWatchOptions{})
	seen := map[string]bool{}
	for !seen["host-a"] || !seen["host-b"] {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("WatchFleet: %v\n%s", err, a.Server.Log())
		}
		if h := ev.GetHost(); h != nil {
			seen[h.GetHostId()] = true
		}
	}
	w.Close()
	cb, err := xenchan.DialUnix(ctx, b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if _, err := cb.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName("vm-b"), ChannelId: agentChannel, WaitUntilConnected: true}); err != nil {
		t.Fatal(err)
	}
	agent := b.StartAgent("vm-b", t.TempDir())
	if !agent.WaitForLog("(raw)", 30*time.Second) {
		t.Fatalf("agent did not open its channel:\n%s", agent.Log())
	}

	t.Run("ListHosts", func(t *testing.T) {
		hosts, err := fleet.ListHosts(ctx).All()
		if err != nil || len(hosts) != 2 || hosts[0].GetHostId() != "host-a" || hosts[1].GetHostId() != "host-b" {
			t.Fatalf("ListHosts = %v, %v", hosts, err)
		}
		if hosts[1].GetApiAddress() != "unix://"+b.Socket || hosts[1].GetName() != "hosts/host-b" {
			t.Errorf("host-b = %v", hosts[1])
		}
	})

	t.Run("LocateThroughAAndCallOnB", func(t *testing.T) {
		var loc *xenchan.DomainLocation
		until(t, "vm-b in the fleet", func() bool {
			loc, err = fleet.LocateDomain(ctx, "vm-b")
			return err == nil
		})
		if loc.Host.GetHostId() != "host-b" || loc.Domain.GetDisplayName() != "vm-b" || loc.Domain.GetHost() != "hosts/host-b" {
			t.Fatalf("LocateDomain(vm-b) = %v", loc)
		}
		c, loc2, err := fleet.Dial(ctx, loc.Domain.GetUuid())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if loc2.Domain.GetUuid() != loc.Domain.GetUuid() {
			t.Errorf("Dial by UUID located %v", loc2)
		}
		r, err := c.Call(ctx, xenchan.ChannelName("vm-b", agentChannel), []byte(`{"op":"ping"}`))
		if err != nil || !bytes.Contains(r.GetResponse(), []byte(`"ok":true`)) {
			t.Fatalf("Call on host-b = %q, %v", r.GetResponse(), err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		_, err := fleet.LocateDomain(ctx, "no-such-vm")
		if xerr := asError(t, err); xerr.Code != codes.NotFound || xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_DOMAIN_NOT_FOUND {
			t.Errorf("LocateDomain(no-such-vm) = %v", err)
		}
		if _, _, err := fleet.Dial(ctx, "no-such-vm"); xenchan.ReasonOf(err) != xenchanpb.ErrorReason_ERROR_REASON_DOMAIN_NOT_FOUND {
			t.Errorf("Dial(no-such-vm) = %v", err)
		}
		if _, err := fleet.Read(ctx, "no-such-vm", logChannel, xenchan.FleetReadOptions{Follow: true}); xenchan.ReasonOf(err) != xenchanpb.ErrorReason_ERROR_REASON_DOMAIN_NOT_FOUND {
			t.Errorf("Read(no-such-vm) = %v", err)
		}
		outside, err := xenchan.DialFleet(ctx, "unix://"+lone.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer outside.Close()
		_, errLocate := outside.LocateDomain(ctx, "vm-b")
		_, errList := outside.ListHosts(ctx).All()
		_, errWatch := outside.Watch(ctx, xenchan.FleetWatchOptions{}).Next()
		for _, err := range []error{errLocate, errList, errWatch} {
			var xerr *xenchan.Error
			if !errors.As(err, &xerr) || xerr.Code != codes.FailedPrecondition || xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_FLEET_NOT_CONFIGURED {
				t.Errorf("outside a fleet: %v, want FAILED_PRECONDITION FLEET_NOT_CONFIGURED", err)
			}
		}
	})

	t.Run("WatchResumes", func(t *testing.T) {
		w := fleet.Watch(ctx, xenchan.FleetWatchOptions{})
		for {
			ev, err := w.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetType() == xenchanpb.FleetEventType_FLEET_EVENT_TYPE_SYNCED {
				break
			}
			if ev.GetType() != xenchanpb.FleetEventType_FLEET_EVENT_TYPE_EXISTING {
				t.Errorf("before SYNCED: %v", ev)
			}
		}
		rev := w.Revision()
		w.Close()
		b.CreateDomain("vm-w")
		w = fleet.Watch(ctx, xenchan.FleetWatchOptions{StartRevision: rev})
		defer w.Close()
		for {
			ev, err := w.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetType() == xenchanpb.FleetEventType_FLEET_EVENT_TYPE_EXISTING || ev.GetRevision() < rev {
				t.Fatalf("resumed after %d: %v", rev, ev)
			}
			if d := ev.GetDomain(); d != nil && d.GetDisplayName() == "vm-w" {
				if ev.GetType() != xenchanpb.FleetEventType_FLEET_EVENT_TYPE_APPEARED || d.GetHost() != "hosts/host-b" {
					t.Errorf("vm-w: %v", ev)
				}
				break
			}
		}
	})

	t.Run("FollowAcrossMigration", func(t *testing.T) { testFollow(t, etcd, a, b, fleet) })
	t.Run("FollowThroughOwnerRestart", func(t *testing.T) { testRestart(t, a, fleet) })
}

// testRestart: the owner's xenchand restarts under a following read
// (UNAVAILABLE); the follower waits for the domain's record (gone with the
// revoked lease until the host publishes again), reconnects to the same
// host and reads what the guest writes after the restart.
func testRestart(t *testing.T, a *xenchantest.Host, fleet *xenchan.Fleet) {
	ctx := testContext(t)
	ca, err := xenchan.DialUnix(ctx, a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName("vm-a"), ChannelId: logChannel, WaitUntilConnected: true}); err != nil {
		t.Fatal(err)
	}
	ca.Close()
	until(t, "vm-a on host-a in the fleet", func() bool {
		loc, err := fleet.LocateDomain(ctx, "vm-a")
		return err == nil && loc.Host.GetHostId() == "host-a"
	})
	it, err := fleet.Read(ctx, "vm-a", logChannel, xenchan.FleetReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	a.Server.Stop()
	a.StartServer()
	until(t, "vm-a on host-a again", func() bool {
		loc, err := fleet.LocateDomain(ctx, "vm-a")
		return err == nil && loc.Host.GetHostId() == "host-a"
	})
	tty, err := a.OpenGuestTTY("vm-a", logChannel)
	if err != nil {
		t.Fatal(err)
	}
	tty.Write([]byte("after restart\n"))
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "\n") {
		item, err := it.Next()
		if err != nil {
			t.Fatalf("after %q: %v", got.String(), err)
		}
		if item.Gap != nil {
			t.Errorf("gap %v", item.Gap)
		}
		got.Write(item.Data.GetData())
	}
	if got.String() != "after restart\n" || it.Moves() != 0 || it.Location().Host.GetHostId() != "host-a" {
		t.Errorf("read %q, moves %d, location %v", got.String(), it.Moves(), it.Location())
	}
}

// testFollow follows vm-m's durable log channel from host-a across
// `xensim domain migrate` to host-b. The follower has read "one" on A; "two"
// reaches A but not the follower before the domain moves: it must come from
// A before the one DOMAIN_MIGRATED epoch change, "three" from B after it.
func testFollow(t *testing.T, etcd *xenchantest.Etcd, a, b *xenchantest.Host, fleet *xenchan.Fleet) {
	ctx := testContext(t)
	ca, err := xenchan.DialUnix(ctx, a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	ch, err := ca.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName("vm-m"), ChannelId: logChannel, WaitUntilConnected: true,
		Config: &xenchanpb.ChannelConfig{Lifetime: xenchanpb.ChannelLifetime_CHANNEL_LIFETIME_DURABLE}})
	if err != nil {
		t.Fatal(err)
	}
	decl := "/xenchan/v1/declarations/" + ch.GetDomainUuid() + "/" + logChannel
	until(t, "the declaration in etcd", func() bool {
		keys, err := etcd.Keys(decl)
		return err == nil && len(keys) == 1
	})
	until(t, "vm-m on host-a in the fleet", func() bool {
		loc, err := fleet.LocateDomain(ctx, "vm-m")
		return err == nil && loc.Host.GetHostId() == "host-a"
	})
	tty, err := a.OpenGuestTTY("vm-m", logChannel)
	if err != nil {
		t.Fatal(err)
	}
	tty.Write([]byte("one\n"))
	it, err := fleet.Read(ctx, "vm-m", logChannel, xenchan.FleetReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	first, err := it.Next()
	if err != nil || string(first.Data.GetData()) != "one\n" {
		t.Fatalf("first item = %v, %v", first, err)
	}
	firstEpoch := it.Position().GetEpoch()
	tty.Write([]byte("two\n"))
	until(t, "8 bytes on host-a", func() bool {
		c, err := ca.GetChannel(ctx, ch.GetName())
		return err == nil && c.GetCounters().GetBytesFromGuest() == 8
	})
	if err := a.Migrate("vm-m", b); err != nil {
		t.Fatal(err)
	}
	cb, err := xenchan.DialUnix(ctx, b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	until(t, "vm-m's channel connected on host-b", func() bool {
		c, err := cb.GetChannel(ctx, ch.GetName())
		return err == nil && c.GetState() == xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED
	})
	ttyB, err := b.OpenGuestTTY("vm-m", logChannel)
	if err != nil {
		t.Fatal(err)
	}
	ttyB.Write([]byte("three\n"))

	items := []*xenchan.ReadItem{first}
	var data strings.Builder
	data.WriteString("one\n")
	for !strings.HasSuffix(data.String(), "three\n") {
		item, err := it.Next()
		if err != nil {
			t.Fatalf("after %q: %v", data.String(), err)
		}
		items = append(items, item)
		data.Write(item.Data.GetData())
	}
	if data.String() != "one\ntwo\nthree\n" {
		t.Fatalf("read %q", data.String())
	}
	var change *xenchanpb.EpochChange
	var before strings.Builder
	for _, item := range items {
		switch {
		case item.Gap != nil:
			t.Errorf("unexpected gap %v", item.Gap)
		case item.EpochChange != nil && change != nil:
			t.Errorf("a second epoch change %v", item.EpochChange)
		case item.EpochChange != nil:
			change = item.EpochChange
		case change == nil:
			before.Write(item.Data.GetData())
		case item.Data.GetEpoch() != change.GetEpoch():
			t.Errorf("data after the move in epoch %d, not %d", item.Data.GetEpoch(), change.GetEpoch())
		}
	}
	if change == nil || before.String() != "one\ntwo\n" {
		t.Fatalf("epoch change %v after %q", change, before.String())
	}
	if change.GetReason() != xenchanpb.EpochChangeReason_EPOCH_CHANGE_REASON_DOMAIN_MIGRATED ||
		change.GetPreviousEpoch() != firstEpoch || change.GetPreviousEndOffset() != 8 || change.GetEpoch() == firstEpoch {
		t.Errorf("epoch change %v (first epoch %d)", change, firstEpoch)
	}
	if it.Moves() != 1 || it.Location().Host.GetHostId() != "host-b" {
		t.Errorf("moves %d, location %v", it.Moves(), it.Location())
	}
	if p := it.Position(); p.GetEpoch() != change.GetEpoch() || p.GetOffset() != 6 {
		t.Errorf("position %v", p)
	}
}
