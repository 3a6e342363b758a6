// Fleet mode: one host loop (hostloop.go) per host of a fleet, started when
// a host registers and stopped when it leaves, all sharing the controller's
// workers. The hosts come from ListHosts and then from the fleet's watch,
// resumed after the listing's revision (docs/FLEET.md, "Finding a domain:
// FleetService").

package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// hostRun is the loop of one host.
type hostRun struct {
	host   *xenchanpb.Host
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has ended
}

// fleetRunner starts and stops host loops. Only RunFleet's goroutine uses
// it.
type fleetRunner struct {
	c     *Controller
	fleet *xenchan.Fleet
	hosts map[string]*hostRun // by host id
}

// RunFleet provisions the guests of every host of fleet until ctx ends
// (then it returns nil, after every host loop ended) or the fleet cannot be
// followed any more (FLEET_NOT_CONFIGURED, PERMISSION_DENIED, ...). A host
// loop that fails is retried with backoff and never ends the others.
func (c *Controller) RunFleet(ctx context.Context, fleet *xenchan.Fleet) error {
	stop := c.startWorkers()
	defer stop()
	r := &fleetRunner{c: c, fleet: fleet, hosts: map[string]*hostRun{}}
	defer r.stopAll()
	rev, err := r.list(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return r.follow(ctx, rev)
}

// list starts a loop for every registered host and returns the revision to
// watch the fleet after (the oldest of the pages': changes between pages
// are replayed). UNAVAILABLE (a xenchand that has not read etcd yet) is
// retried with the controller's backoff.
func (r *fleetRunner) list(ctx context.Context) (int64, error) {
	for attempt := 1; ; attempt++ {
		hosts, rev, err := r.listOnce(ctx)
		if err == nil {
			for _, h := range hosts {
				r.ensure(ctx, h)
			}
			r.c.Log.Info("fleet listed", "hosts", len(hosts), "revision", rev)
			return rev, nil
		}
		if xenchan.CodeOf(err) != codes.Unavailable || ctx.Err() != nil {
			return 0, fmt.Errorf("ListHosts: %w", err)
		}
		d := r.c.Retry.Backoff(attempt)
		r.c.Log.Warn("listing the fleet failed; retrying", "attempt", attempt, "backoff", d.String(), "error", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(d):
		}
	}
}

func (r *fleetRunner) listOnce(ctx context.Context) ([]*xenchanpb.Host, int64, error) {
	var hosts []*xenchanpb.Host
	var rev int64
	token := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, 0, fmt.Errorf("more than 1000 pages of hosts")
		}
		resp, err := r.fleet.Raw().ListHosts(ctx, &xenchanpb.ListHostsRequest{PageToken: token})
		if err != nil {
			if st, ok := status.FromError(err); ok {
				return nil, 0, xenchan.FromStatus(st)
			}
			return nil, 0, err
		}
		hosts = append(hosts, resp.GetHosts()...)
		if rev == 0 || resp.GetRevision() < rev {
			rev = resp.GetRevision()
		}
		if token = resp.GetNextPageToken(); token == "" {
			return hosts, rev, nil
		}
	}
}

// follow applies the fleet's host events from after rev until ctx ends or
// the watch fails for good. After a relist (REVISION_NOT_RETAINED: the
// watcher starts over with a snapshot) the hosts missing from the snapshot
// are stopped at its SYNCED.
func (r *fleetRunner) follow(ctx context.Context, rev int64) error {
	w := r.fleet.Watch(ctx, xenchan.FleetWatchOptions{StartRevision: rev})
	defer w.Close()
	relists := 0
	var snapshot map[string]bool // the hosts of a snapshot still being received
	if rev == 0 {
		snapshot = map[string]bool{}
	}
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fleet watch: %w", err)
		}
		if w.Relists() != relists {
			relists = w.Relists()
			snapshot = map[string]bool{}
			r.c.Log.Warn("fleet watch relisting: its revision is no longer retained", "relists", relists)
		}
		h := ev.GetHost()
		switch ev.GetType() {
		case xenchanpb.FleetEventType_FLEET_EVENT_TYPE_SYNCED:
			for id := range r.hosts {
				if snapshot != nil && !snapshot[id] {
					r.stop(id, "host gone from the fleet's snapshot; its loop stopped")
				}
			}
			snapshot = nil
			r.c.Log.Info("fleet synced", "revision", ev.GetRevision(), "hosts", len(r.hosts))
		case xenchanpb.FleetEventType_FLEET_EVENT_TYPE_EXISTING, xenchanpb.FleetEventType_FLEET_EVENT_TYPE_APPEARED,
			xenchanpb.FleetEventType_FLEET_EVENT_TYPE_CHANGED:
			if h != nil {
				if snapshot != nil {
					snapshot[h.GetHostId()] = true
				}
				r.ensure(ctx, h)
			}
		case xenchanpb.FleetEventType_FLEET_EVENT_TYPE_DISAPPEARED:
			if h != nil {
				r.stop(h.GetHostId(), "host left the fleet; its loop stopped")
			}
		}
	}
}

// ensure runs a loop for h: a new one if there is none or h's address or
// identity changed.
func (r *fleetRunner) ensure(ctx context.Context, h *xenchanpb.Host) {
	id := h.GetHostId()
	if id == "" {
		return
	}
	if cur := r.hosts[id]; cur != nil {
		if cur.host.GetApiAddress() == h.GetApiAddress() && cur.host.GetIdentity() == h.GetIdentity() {
			return
		}
		r.stop(id, "host moved to another address or identity; its loop stopped")
	}
	hctx, cancel := context.WithCancel(ctx)
	run := &hostRun{host: h, cancel: cancel, done: make(chan struct{})}
	r.hosts[id] = run
	r.c.Log.Info("host joined; starting its loop", "host", id, "address", h.GetApiAddress(), "identity", h.GetIdentity())
	go func() {
		defer close(run.done)
		r.c.superviseHost(hctx, r.fleet, h)
	}()
}

// stop ends the loop of host id and waits for it (its jobs in flight see
// their context end).
func (r *fleetRunner) stop(id, why string) {
	run := r.hosts[id]
	if run == nil {
		return
	}
	delete(r.hosts, id)
	run.cancel()
	<-run.done
	r.c.Log.Info(why, "host", id)
}

func (r *fleetRunner) stopAll() {
	for id := range r.hosts {
		r.stop(id, "host loop stopped")
	}
}

// superviseHost runs h's loop until ctx ends: dialled with the fleet's
// options and h's advertised identity (Fleet.DialHost), restarted with
// backoff whenever it fails (a host that cannot be reached, refuses us or
// whose watch gives up).
func (c *Controller) superviseHost(ctx context.Context, fleet *xenchan.Fleet, h *xenchanpb.Host) {
	log := c.Log.With("host", h.GetHostId())
	for attempt := 1; ; attempt++ {
		client, err := fleet.DialHost(ctx, h)
		if err == nil {
			log.Info("host loop started", "address", h.GetApiAddress())
			started := time.Now()
			err = c.watchHost(ctx, client, log)
			client.Close()
			if time.Since(started) > time.Minute {
				attempt = 1 // it ran well for a while: a fresh failure
			}
		}
		if ctx.Err() != nil {
			return
		}
		d := c.Retry.Backoff(attempt)
		log.Warn("host loop ended; retrying", "attempt", attempt, "backoff", d.String(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}
