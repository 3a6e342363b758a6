// The decisions of a read that follows a channel across hosts
// (docs/FLEET.md, "Following a channel across hosts"), free of I/O: which
// stream ends and epoch changes make it re-resolve, which record ends the
// wait for the owner, and what the caller gets for a move.

package xenchan

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"xenchan.dev/go/xenchanpb"
)

// DefaultMoveTimeout is how long a following read waits for a domain that
// left its host to show up on its owner.
const DefaultMoveTimeout = 30 * time.Second

const (
	firstPause = 100 * time.Millisecond // between look-ups: doubling...
	maxPause   = time.Second            // ...up to this
)

const reasonMigrated = xenchanpb.EpochChangeReason_EPOCH_CHANGE_REASON_DOMAIN_MIGRATED

// triggerKind says why a following read re-resolves its domain.
type triggerKind int

const (
	// triggerMigrated: an EpochChange with reason DOMAIN_MIGRATED.
	triggerMigrated triggerKind = iota
	// triggerUnavailable: the stream ended UNAVAILABLE.
	triggerUnavailable
	// triggerNotFound: the stream ended NOT_FOUND.
	triggerNotFound
	// triggerDeparted: the fleet names another host while the channel on
	// this one is DOMAIN_DOWN (the signal of xenchands that do not yet end a
	// moved channel's epoch themselves).
	triggerDeparted
)

type trigger struct {
	kind  triggerKind
	err   error                  // the stream's error (unavailable, not found)
	epoch *xenchanpb.EpochChange // the source's DOMAIN_MIGRATED change, if any
}

// classify returns the trigger a stream's error is, or nil if the error is
// the caller's.
func classify(err error) *trigger {
	switch CodeOf(err) {
	case codes.Unavailable:
		return &trigger{kind: triggerUnavailable, err: err}
	case codes.NotFound:
		return &trigger{kind: triggerNotFound, err: err}
	}
	return nil
}

// satisfiedBy reports whether the record d ends the wait for the owner;
// host is the current host ("hosts/{id}") and domid the domid last resolved.
func (t *trigger) satisfiedBy(d *xenchanpb.FleetDomain, host string, domid uint32) bool {
	switch t.kind {
	case triggerMigrated:
		return d.GetHost() != host || d.GetDomid() != domid
	case triggerUnavailable:
		return true
	}
	return d.GetHost() != host
}

// ownerWait bounds the wait for a domain's owner.
type ownerWait struct {
	domain   string
	deadline time.Time
	pause    time.Duration
	last     *xenchanpb.FleetDomain
}

func newOwnerWait(domain string, timeout time.Duration) *ownerWait {
	return &ownerWait{domain: domain, deadline: time.Now().Add(timeout), pause: firstPause}
}

// nextPause returns the pause before the next look-up, false once the bound
// is reached.
func (w *ownerWait) nextPause() (time.Duration, bool) {
	left := time.Until(w.deadline)
	if left <= 0 {
		return 0, false
	}
	p := w.pause
	if p > left {
		p = left
	}
	w.pause *= 2
	if w.pause > maxPause {
		w.pause = maxPause
	}
	return p, true
}

// timeoutError is DEADLINE_EXCEEDED naming the domain and its last record.
func (w *ownerWait) timeoutError(cause error) error {
	last := "no record seen"
	if w.last != nil {
		last = fmt.Sprintf("last record: host %s, domid %d, state %s", w.last.GetHost(), w.last.GetDomid(), w.last.GetState())
	}
	msg := fmt.Sprintf("domain %s did not appear on its owner in time (%s)", w.domain, last)
	if cause != nil {
		msg += "; last error: " + cause.Error()
	}
	return FromStatus(status.New(codes.DeadlineExceeded, msg))
}

// moveSplice turns the new owner's first message into what the caller gets
// for a move: one EpochChange (reason DOMAIN_MIGRATED, from where the source
// ended to the first epoch there), then a Gap from offset 0 if the new owner
// no longer holds the start of that epoch.
type moveSplice struct {
	change  *xenchanpb.EpochChange
	hasTime bool
}

// newMoveSplice starts a move from the source's DOMAIN_MIGRATED change, or,
// without one, from pos (where the follower got to).
func newMoveSplice(source *xenchanpb.EpochChange, pos *xenchanpb.Position) *moveSplice {
	s := &moveSplice{change: &xenchanpb.EpochChange{Reason: reasonMigrated}}
	if source != nil {
		s.change.PreviousEpoch = source.GetPreviousEpoch()
		s.change.PreviousEndOffset = source.GetPreviousEndOffset()
		s.change.Time = source.GetTime()
		s.hasTime = source.GetTime() != nil
	} else if pos != nil {
		s.change.PreviousEpoch = pos.GetEpoch()
		s.change.PreviousEndOffset = pos.GetOffset()
	}
	return s
}

// first returns the messages to deliver for the new owner's first message.
func (s *moveSplice) first(m *xenchanpb.ReadResponse) []*xenchanpb.ReadResponse {
	ec := func() *xenchanpb.ReadResponse {
		return &xenchanpb.ReadResponse{Event: &xenchanpb.ReadResponse_EpochChange{EpochChange: s.change}}
	}
	var epoch, offset uint64
	switch ev := m.Event.(type) {
	case *xenchanpb.ReadResponse_EpochChange:
		if ev.EpochChange.GetPreviousEpoch() == 0 { // connected there: folded into the move
			s.change.Epoch = ev.EpochChange.GetEpoch()
			if !s.hasTime {
				s.change.Time = ev.EpochChange.GetTime()
			}
			return []*xenchanpb.ReadResponse{ec()}
		}
		s.change.Epoch = ev.EpochChange.GetPreviousEpoch()
		return []*xenchanpb.ReadResponse{ec(), m}
	case *xenchanpb.ReadResponse_Data:
		epoch, offset = ev.Data.GetEpoch(), ev.Data.GetOffset()
	case *xenchanpb.ReadResponse_Gap:
		epoch, offset = ev.Gap.GetEpoch(), ev.Gap.GetOffset()
	default:
		return []*xenchanpb.ReadResponse{m}
	}
	s.change.Epoch = epoch
	out := []*xenchanpb.ReadResponse{ec()}
	if offset > 0 {
		out = append(out, &xenchanpb.ReadResponse{Event: &xenchanpb.ReadResponse_Gap{
			Gap: &xenchanpb.Gap{Epoch: epoch, Offset: 0, Length: offset}}})
	}
	return append(out, m)
}
