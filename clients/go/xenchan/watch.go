// Watch: channel lifecycle events that reconnect and resume from their
// revision.

package xenchan

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/xenchanpb"
)

// WatchOptions select the events of a Watch.
type WatchOptions struct {
	// Filter keeps only events of matching channels.
	Filter *xenchanpb.ChannelFilter
	// StartRevision resumes an earlier watch after this revision (see
	// Watcher.Revision); 0 starts with a snapshot: EXISTING events for the
	// current channels, then SYNCED.
	StartRevision uint64
}

// Watcher is a WatchChannels stream that reconnects by itself, in the way of
// client-go's watch: after an UNAVAILABLE error, or RESOURCE_EXHAUSTED
// SLOW_CONSUMER, it waits according to the client's RetryPolicy and resumes
// after the last revision it may resume from (Revision), so no event is lost
// or repeated. When the server no longer retains that revision
// (REVISION_NOT_RETAINED, for example after xenchand restarted) it starts
// over with a fresh snapshot, a relist: the caller then gets EXISTING events
// for every channel again, then SYNCED, and should treat channels it knew
// but that the new snapshot lacks as removed. Relists counts them. Not safe
// for concurrent use.
type Watcher struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	parent  string
	opts    WatchOptions
	stream  xenchanpb.ChannelService_WatchChannelsClient
	resume  uint64 // revision to resume after; 0: snapshot
	relists int
	err     error
}

// Watch watches the channels of parent ("domains/{domain}", followed by UUID
// across reboots, or AllDomains).
func (c *Client) Watch(ctx context.Context, parent string, opts WatchOptions) *Watcher {
	ctx, cancel := context.WithCancel(ctx)
	return &Watcher{c: c, ctx: ctx, cancel: cancel, parent: parent, opts: opts, resume: opts.StartRevision}
}

// Revision is the revision to resume after: that of the last SYNCED,
// PROGRESS or live event returned (EXISTING events count only once their
// SYNCED has been returned). Store it with your state to resume a later
// Watch with WatchOptions.StartRevision.
func (w *Watcher) Revision() uint64 { return w.resume }

// Relists returns how many times the watcher had to start over with a
// snapshot because its revision was no longer retained.
func (w *Watcher) Relists() int { return w.relists }

// Close ends the watch; Next then returns CANCELED.
func (w *Watcher) Close() { w.cancel() }

// Next blocks for the next event. It returns an error only when the watch
// cannot go on: a non-retryable error (INVALID_NAME, DOMAIN_NOT_FOUND at
// start, PERMISSION_DENIED, ...), UNAVAILABLE once the RetryPolicy is used
// up, or the context's end.
func (w *Watcher) Next() (*xenchanpb.WatchChannelsResponse, error) {
	if w.err != nil {
		return nil, w.err
	}
	for failures := 0; ; {
		if w.stream == nil {
			req := &xenchanpb.WatchChannelsRequest{Parent: w.parent, Filter: w.opts.Filter, StartRevision: w.resume}
			s, err := w.c.rpc.WatchChannels(w.ctx, req)
			if err != nil {
				err = wrapError(err)
				if !isRetryable(err) || w.c.retry.exhausted(failures+1) {
					w.err = err
					return nil, err
				}
				failures++
				if werr := w.c.retry.wait(w.ctx, failures, err); werr != nil {
					w.err = werr
					return nil, werr
				}
				continue
			}
			w.stream = s
		}
		m, err := w.stream.Recv()
		if err == nil {
			w.advance(m)
			return m, nil
		}
		w.stream = nil
		if err == io.EOF {
			err = errors.New("xenchan: watch stream ended without a status")
		}
		err = wrapError(err)
		var e *Error
		switch {
		case errors.As(err, &e) && e.Reason == xenchanpb.ErrorReason_ERROR_REASON_REVISION_NOT_RETAINED:
			// Start over with a snapshot (at once: the server answered).
			w.resume = 0
			w.relists++
			continue
		case CodeOf(err) == codes.ResourceExhausted && ReasonOf(err) == xenchanpb.ErrorReason_ERROR_REASON_SLOW_CONSUMER,
			isRetryable(err):
		default:
			w.err = err
			return nil, err
		}
		if w.c.retry.exhausted(failures + 1) {
			w.err = err
			return nil, err
		}
		failures++
		if werr := w.c.retry.wait(w.ctx, failures, err); werr != nil {
			w.err = werr
			return nil, werr
		}
	}
}

// advance moves the resume revision past m, following the rules of
// WatchChannelsRequest.start_revision.
func (w *Watcher) advance(m *xenchanpb.WatchChannelsResponse) {
	// EXISTING events count only once their SYNCED arrives (it carries the
	// same revision).
	if m.GetType() != xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_EXISTING {
		w.resume = m.GetRevision()
	}
	// A single-domain parent given by display name resumes by UUID, so the
	// watch keeps following the same VM even if the name moves.
	if ch := m.GetChannel(); ch != nil && ch.GetDomainUuid() != "" && strings.Count(w.parent, "/") == 1 && w.parent != AllDomains {
		w.parent = DomainName(ch.GetDomainUuid())
	}
}
