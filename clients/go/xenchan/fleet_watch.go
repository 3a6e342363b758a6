// FleetWatcher: the fleet's changes (WatchFleet) as an iterator that
// reconnects and resumes from its revision.

package xenchan

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/xenchanpb"
)

// FleetWatchOptions say where a fleet watch starts.
type FleetWatchOptions struct {
	// StartRevision resumes an earlier watch after this etcd revision (see
	// FleetWatcher.Revision, DomainLocation.Revision); 0 starts with a
	// snapshot: EXISTING events for the current hosts and domains, then
	// SYNCED.
	StartRevision int64
}

// FleetWatcher is a WatchFleet stream that reconnects by itself, as Watcher
// does for channels: after UNAVAILABLE (the xenchand restarting, or not yet
// having read etcd) or RESOURCE_EXHAUSTED SLOW_CONSUMER it waits according
// to the fleet's RetryPolicy and resumes after Revision, so no event is lost
// or repeated; when that revision is no longer retained
// (REVISION_NOT_RETAINED) it starts over with a snapshot (Relists counts
// them): a cache should then be replaced by the EXISTING events up to the
// next SYNCED. Not safe for concurrent use.
type FleetWatcher struct {
	f       *Fleet
	ctx     context.Context
	cancel  context.CancelFunc
	stream  xenchanpb.FleetService_WatchFleetClient
	resume  int64
	relists int
	err     error
}

// Watch watches the fleet's hosts and domains (domain events only for
// domains the caller may see on the answering xenchand).
func (f *Fleet) Watch(ctx context.Context, opts FleetWatchOptions) *FleetWatcher {
	ctx, cancel := context.WithCancel(ctx)
	return &FleetWatcher{f: f, ctx: ctx, cancel: cancel, resume: opts.StartRevision}
}

// Revision is the revision to resume after: that of the last SYNCED or
// live event returned (EXISTING events count once their SYNCED has been
// returned).
func (w *FleetWatcher) Revision() int64 { return w.resume }

// Relists returns how many times the watcher started over with a snapshot.
func (w *FleetWatcher) Relists() int { return w.relists }

// Close ends the watch; Next then returns CANCELED.
func (w *FleetWatcher) Close() { w.cancel() }

// Next blocks for the next event. It returns an error only when the watch
// cannot go on: FLEET_NOT_CONFIGURED, PERMISSION_DENIED, UNAUTHENTICATED,
// UNAVAILABLE once the RetryPolicy is used up, or the context's end.
func (w *FleetWatcher) Next() (*xenchanpb.WatchFleetResponse, error) {
	if w.err != nil {
		return nil, w.err
	}
	for failures := 0; ; {
		if w.stream == nil {
			s, err := w.f.rpc.WatchFleet(w.ctx, &xenchanpb.WatchFleetRequest{StartRevision: w.resume})
			if err != nil {
				if err = w.failed(wrapError(err), &failures); err != nil {
					return nil, err
				}
				continue
			}
			w.stream = s
		}
		m, err := w.stream.Recv()
		if err == nil {
			if m.GetType() != xenchanpb.FleetEventType_FLEET_EVENT_TYPE_EXISTING {
				w.resume = m.GetRevision()
			}
			return m, nil
		}
		w.stream = nil
		if err == io.EOF {
			err = errors.New("xenchan: fleet watch ended without a status")
		}
		err = wrapError(err)
		if ReasonOf(err) == xenchanpb.ErrorReason_ERROR_REASON_REVISION_NOT_RETAINED {
			w.resume = 0
			w.relists++
			continue
		}
		if err = w.failed(err, &failures); err != nil {
			return nil, err
		}
	}
}

// failed decides after a failed attempt: nil after waiting to retry, or the
// error that ends the watch.
func (w *FleetWatcher) failed(err error, failures *int) error {
	slow := CodeOf(err) == codes.ResourceExhausted && ReasonOf(err) == xenchanpb.ErrorReason_ERROR_REASON_SLOW_CONSUMER
	if (!isRetryable(err) && !slow) || w.f.retry.exhausted(*failures+1) {
		w.err = err
		return err
	}
	*failures++
	if werr := w.f.retry.wait(w.ctx, *failures, err); werr != nil {
		w.err = werr
		return werr
	}
	return nil
}
