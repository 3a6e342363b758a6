// FleetReadIterator: a Read that follows a channel's domain from host to
// host of a fleet (docs/FLEET.md, "Following a channel across hosts").

package xenchan

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/xenchanpb"
)

// FleetReadOptions say where a fleet read starts and whether it follows.
type FleetReadOptions struct {
	// Start is where the stream starts on the domain's current host; nil
	// means the oldest byte retained there.
	Start *xenchanpb.ReadStart
	// Follow keeps the stream open for new data, across epochs and hosts,
	// until the context ends. Without it the stream ends after the data
	// the owner retained when it answered.
	Follow bool
	// MoveTimeout bounds the wait for the domain to show up on its owner
	// after it left a host (0: DefaultMoveTimeout).
	MoveTimeout time.Duration
}

// FleetReadIterator reads a channel on whichever host of the fleet runs its
// domain. It re-resolves the domain through the fleet when the owner's
// stream says the domain left: an EpochChange with reason DOMAIN_MIGRATED,
// the stream ending UNAVAILABLE (the host unreachable or restarting) or
// NOT_FOUND (the copy there removed), or, from xenchands that do not yet end
// a moved channel's epoch themselves, the fleet naming another host while
// the channel here is DOMAIN_DOWN (what the source still holds is then read
// to its end first). It waits at most MoveTimeout for the owner
// (DEADLINE_EXCEEDED naming the domain and its last record otherwise), then
// continues on the same host after a restart from Position (nothing
// repeated), or on the new host from the start of the channel's epoch there,
// after one EpochChange (reason DOMAIN_MIGRATED, from where the source
// ended) and, if the new owner no longer holds that epoch's first bytes, a
// Gap from offset 0. Every other error and epoch change is the caller's.
//
// Next is used by one goroutine at a time; Close may be called from any.
type FleetReadIterator struct {
	f           *Fleet
	ctx         context.Context
	cancel      context.CancelFunc
	channel     string // by UUID
	opts        FleetReadOptions
	moveTimeout time.Duration

	mu           sync.Mutex
	loc          *DomainLocation    // guarded by mu
	client       *Client            // guarded by mu
	gen          int                // of the Read in flight; guarded by mu
	departed     int                // the generation the departure watch ended; guarded by mu
	streamCancel context.CancelFunc // guarded by mu

	stream  xenchanpb.ChannelService_ReadClient
	moved   bool // on a new host: (re)open from its earliest byte
	pos     *xenchanpb.Position
	pending []*ReadItem
	next    *trigger // a trigger whose drained items are pending
	splice  *moveSplice
	adopt   *ownerWait
	retries int
	moves   int
	err     error
}

// Read resolves domain and reads its channel channelID on the host that runs
// it; with opts.Follow the stream moves with the domain (see
// FleetReadIterator). Resolution errors (DOMAIN_NOT_FOUND, ...) are returned
// here.
func (f *Fleet) Read(ctx context.Context, domain, channelID string, opts FleetReadOptions) (*FleetReadIterator, error) {
	c, loc, err := f.Dial(ctx, domain)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	it := &FleetReadIterator{f: f, ctx: ctx, cancel: cancel, opts: opts, loc: loc, client: c,
		channel: ChannelName(loc.Domain.GetUuid(), channelID), moveTimeout: opts.MoveTimeout, departed: -1}
	if it.moveTimeout <= 0 {
		it.moveTimeout = DefaultMoveTimeout
	}
	if err := it.open(); err != nil {
		it.Close()
		return nil, err
	}
	if opts.Follow {
		go it.watchDepartures(loc.Revision)
	}
	return it, nil
}

// Position returns the position one past the last byte (or gap, or epoch
// start) Next returned, on the current host; nil before any.
func (it *FleetReadIterator) Position() *xenchanpb.Position { return it.pos }

// Location returns where the domain runs, as last resolved.
func (it *FleetReadIterator) Location() *DomainLocation {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.loc
}

// Moves returns how many times the stream moved to another host.
func (it *FleetReadIterator) Moves() int { return it.moves }

// Close ends the stream and closes the connection to the owner; Next then
// returns CANCELED.
func (it *FleetReadIterator) Close() {
	it.cancel()
	it.mu.Lock()
	defer it.mu.Unlock()
	it.client.Close()
}

// Next returns the next item; Done when a stream that does not follow
// ended; otherwise the error that ended it.
func (it *FleetReadIterator) Next() (*ReadItem, error) {
	for {
		if len(it.pending) > 0 {
			item := it.pending[0]
			it.pending = it.pending[1:]
			return item, nil
		}
		if it.err != nil {
			return nil, it.err
		}
		if t := it.next; t != nil {
			it.next = nil
			if err := it.resolve(t, nil); err != nil {
				it.err = err
			}
			continue
		}
		if it.stream == nil {
			if err := it.open(); err != nil {
				it.err = err
				continue
			}
		}
		m, err := it.stream.Recv()
		if err == nil {
			it.retries = 0
			if it.splice != nil {
				for _, r := range it.splice.first(m) {
					it.pending = append(it.pending, it.take(r))
				}
				it.splice, it.adopt = nil, nil
				continue
			}
			if ec := m.GetEpochChange(); ec != nil && ec.GetReason() == reasonMigrated {
				if err := it.resolve(&trigger{kind: triggerMigrated, epoch: ec}, ec); err != nil {
					it.err = err
				}
				continue
			}
			return it.take(m), nil
		}
		if err == io.EOF {
			it.err = Done
			continue
		}
		err = wrapError(err)
		if it.ctx.Err() != nil {
			it.err = wrapError(it.ctx.Err())
			continue
		}
		it.stream = nil
		if it.wasDeparted() {
			t := &trigger{kind: triggerDeparted}
			it.drain(t)
			it.next = t
			continue
		}
		if it.splice != nil && CodeOf(err) == codes.NotFound { // the new owner may still be adopting
			pause, ok := it.adopt.nextPause()
			if !ok {
				it.err = it.adopt.timeoutError(err)
			} else if werr := sleep(it.ctx, pause); werr != nil {
				it.err = werr
			}
			continue
		}
		t := classify(err)
		if t == nil {
			it.err = err
			continue
		}
		if err := it.resolve(t, nil); err != nil {
			it.err = err
		}
	}
}

// open starts the Read on the current host: from Position, else the
// caller's start (or the earliest byte after a move).
func (it *FleetReadIterator) open() error {
	req := &xenchanpb.ReadRequest{Channel: it.channel, Start: it.opts.Start, Follow: it.opts.Follow}
	if it.moved {
		req.Start = &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Anchor{Anchor: xenchanpb.StartAnchor_START_ANCHOR_EARLIEST}}
	}
	if it.pos != nil {
		req.Start = &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: it.pos}}
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	ctx, cancel := context.WithCancel(it.ctx)
	s, err := it.client.rpc.Read(ctx, req)
	if err != nil {
		cancel()
		return wrapError(err)
	}
	it.gen++
	if it.streamCancel != nil {
		it.streamCancel()
	}
	it.stream, it.streamCancel = s, cancel
	return nil
}

// take converts one message and advances the position past it.
func (it *FleetReadIterator) take(m *xenchanpb.ReadResponse) *ReadItem {
	switch ev := m.Event.(type) {
	case *xenchanpb.ReadResponse_Data:
		d := ev.Data
		it.pos = &xenchanpb.Position{Epoch: d.GetEpoch(), Offset: d.GetOffset() + uint64(len(d.GetData()))}
		return &ReadItem{Data: d}
	case *xenchanpb.ReadResponse_Gap:
		g := ev.Gap
		it.pos = &xenchanpb.Position{Epoch: g.GetEpoch(), Offset: g.GetOffset() + g.GetLength()}
		return &ReadItem{Gap: g}
	case *xenchanpb.ReadResponse_EpochChange:
		it.pos = &xenchanpb.Position{Epoch: ev.EpochChange.GetEpoch()}
		return &ReadItem{EpochChange: ev.EpochChange}
	}
	return &ReadItem{}
}

// drain queues what the source still holds from Position to its end (the
// domain is down there, so the end is final). Its DOMAIN_MIGRATED change, if
// it sends one, becomes t's (not delivered).
func (it *FleetReadIterator) drain(t *trigger) {
	req := &xenchanpb.ReadRequest{Channel: it.channel, Start: it.opts.Start}
	if it.pos != nil {
		req.Start = &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: it.pos}}
	}
	ctx, cancel := context.WithCancel(it.ctx)
	defer cancel()
	it.mu.Lock()
	client := it.client
	it.gen++
	it.mu.Unlock()
	s, err := client.rpc.Read(ctx, req)
	if err != nil {
		return
	}
	for {
		m, err := s.Recv()
		if err != nil {
			return // the end, or the source went meanwhile: what it had is delivered
		}
		if ec := m.GetEpochChange(); ec != nil && ec.GetReason() == reasonMigrated {
			t.kind, t.epoch = triggerMigrated, ec
			return
		}
		it.pending = append(it.pending, it.take(m))
	}
}

// resolve waits for the owner after t and continues there; held is a
// DOMAIN_MIGRATED change of the open stream not delivered yet.
func (it *FleetReadIterator) resolve(t *trigger, held *xenchanpb.EpochChange) error {
	loc, err := it.awaitOwner(t)
	if err != nil {
		return err
	}
	cur := it.Location()
	same := loc.Domain.GetHost() == cur.Domain.GetHost()
	if held != nil && same { // a migration within the host: same stream
		it.setLocation(loc, nil)
		it.pending = append(it.pending, it.take(&xenchanpb.ReadResponse{
			Event: &xenchanpb.ReadResponse_EpochChange{EpochChange: held}}))
		return nil
	}
	it.stream = nil
	if same { // restarted or briefly unreachable: resume at Position
		it.setLocation(loc, nil)
		it.retries++
		if it.f.retry.exhausted(it.retries) {
			return t.err
		}
		return it.f.retry.wait(it.ctx, it.retries, t.err)
	}
	c, err := it.f.DialHost(it.ctx, loc.Host)
	if err != nil {
		return err
	}
	it.splice = newMoveSplice(t.epoch, it.pos)
	it.adopt = newOwnerWait(loc.Domain.GetUuid(), it.moveTimeout)
	it.setLocation(loc, c)
	it.pos, it.moved = nil, true
	it.moves++
	return nil
}

func (it *FleetReadIterator) setLocation(loc *DomainLocation, c *Client) {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.loc = loc
	if c != nil {
		it.client.Close()
		it.client = c
	}
}

var seenTypes = map[xenchanpb.FleetEventType]bool{
	xenchanpb.FleetEventType_FLEET_EVENT_TYPE_EXISTING: true,
	xenchanpb.FleetEventType_FLEET_EVENT_TYPE_APPEARED: true,
	xenchanpb.FleetEventType_FLEET_EVENT_TYPE_CHANGED:  true,
}

// awaitOwner looks the domain up until its record satisfies t
// (LocateDomain, then WatchFleet from the answer's revision), within
// MoveTimeout.
func (it *FleetReadIterator) awaitOwner(t *trigger) (*DomainLocation, error) {
	cur := it.Location()
	uuid, host, domid := cur.Domain.GetUuid(), cur.Domain.GetHost(), cur.Domain.GetDomid()
	if t.kind == triggerDeparted {
		t.kind = triggerNotFound // the same condition: a host other than this one
	}
	w := newOwnerWait(uuid, it.moveTimeout)
	for {
		loc, err := it.lookUp(t, w, uuid, host, domid)
		var final *permanent
		if errors.As(err, &final) {
			return nil, final.error
		}
		if loc != nil || (err != nil && it.ctx.Err() != nil) {
			return loc, err
		}
		if err == nil {
			continue // a watch event satisfied t: look it up with its host
		}
		switch CodeOf(err) {
		case codes.Unavailable, codes.NotFound, codes.OutOfRange, codes.DeadlineExceeded:
		default:
			return nil, err
		}
		pause, ok := w.nextPause()
		if !ok {
			return nil, w.timeoutError(err)
		}
		if err := sleep(it.ctx, pause); err != nil {
			return nil, err
		}
	}
}

// lookUp is one round of awaitOwner: the location if it satisfies t; nil
// and nil to look again at once (a watch event satisfied t); or the error.
func (it *FleetReadIterator) lookUp(t *trigger, w *ownerWait, uuid, host string, domid uint32) (*DomainLocation, error) {
	ctx, cancel := context.WithDeadline(it.ctx, w.deadline)
	defer cancel()
	r, err := it.f.rpc.LocateDomain(ctx, &xenchanpb.LocateDomainRequest{Name: DomainName(uuid)})
	if err != nil {
		return nil, wrapError(err)
	}
	w.last = r.GetDomain()
	if t.satisfiedBy(r.GetDomain(), host, domid) {
		return &DomainLocation{Domain: r.GetDomain(), Host: r.GetHost(), Revision: r.GetRevision()}, nil
	}
	if t.kind == triggerNotFound && t.err != nil {
		return nil, &permanent{t.err} // still here: the channel was deleted on its host
	}
	s, err := it.f.rpc.WatchFleet(ctx, &xenchanpb.WatchFleetRequest{StartRevision: r.GetRevision()})
	if err != nil {
		return nil, wrapError(err)
	}
	for {
		ev, err := s.Recv()
		if err != nil {
			return nil, wrapError(err)
		}
		if d := ev.GetDomain(); d != nil && d.GetUuid() == uuid && seenTypes[ev.GetType()] {
			w.last = d
			if t.satisfiedBy(d, host, domid) {
				return nil, nil
			}
		}
	}
}

// permanent wraps an error awaitOwner must not retry.
type permanent struct{ error }

func (p *permanent) Unwrap() error { return p.error }

func (it *FleetReadIterator) wasDeparted() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.departed == it.gen
}

// watchDepartures follows the fleet's records of the domain; when one names
// another host and the channel being read is DOMAIN_DOWN (or gone), it ends
// the current Read so that Next drains the source and moves. Best effort: a
// failing watch only loses this signal. Runs until the iterator is closed.
func (it *FleetReadIterator) watchDepartures(from int64) {
	w := it.f.Watch(it.ctx, FleetWatchOptions{StartRevision: from})
	defer w.Close()
	uuid := it.Location().Domain.GetUuid()
	for {
		ev, err := w.Next()
		if err != nil {
			return
		}
		d := ev.GetDomain()
		if d == nil || d.GetUuid() != uuid || !seenTypes[ev.GetType()] {
			continue
		}
		it.mu.Lock()
		gen, client, here := it.gen, it.client, it.loc.Domain.GetHost()
		it.mu.Unlock()
		if d.GetHost() == here || !it.sourceDown(client, gen) {
			continue
		}
		it.mu.Lock()
		if gen == it.gen && it.streamCancel != nil {
			it.departed = gen
			it.streamCancel()
		}
		it.mu.Unlock()
	}
}

// sourceDown reports whether the channel on client's host is DOMAIN_DOWN or
// gone, polling while Read generation gen is in flight, within MoveTimeout.
func (it *FleetReadIterator) sourceDown(client *Client, gen int) bool {
	w := newOwnerWait("", it.moveTimeout)
	for {
		it.mu.Lock()
		current := it.gen == gen
		it.mu.Unlock()
		if !current {
			return false
		}
		ctx, cancel := context.WithDeadline(it.ctx, w.deadline)
		r, err := client.rpc.GetChannel(ctx, &xenchanpb.GetChannelRequest{Name: it.channel})
		cancel()
		switch {
		case err == nil && r.GetChannel().GetState() == xenchanpb.ChannelState_CHANNEL_STATE_DOMAIN_DOWN:
			return true
		case err != nil && (CodeOf(err) == codes.NotFound || CodeOf(err) == codes.Unavailable):
			return true
		}
		pause, ok := w.nextPause()
		if !ok || sleep(it.ctx, pause) != nil {
			return false
		}
	}
}

// sleep waits d or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return wrapError(ctx.Err())
	case <-t.C:
		return nil
	}
}
