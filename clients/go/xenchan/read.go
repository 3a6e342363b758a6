// Read as an iterator that resumes from its last position after a transient
// failure.

package xenchan

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/xenchanpb"
)

// ReadOptions says where a Read starts and when it ends. The zero value reads
// everything retained, then ends.
type ReadOptions struct {
	// Start is where the stream starts; nil means the oldest byte retained
	// (START_ANCHOR_EARLIEST). To resume, pass Position one past the last
	// byte processed (ReadIterator.Position).
	Start *xenchanpb.ReadStart
	// Follow keeps the stream open for new data, across epochs, until the
	// context ends. Without it the stream ends after the data retained when
	// the server answered (after a reconnect: when it answered again).
	Follow bool
	// MaxBytes ends the stream after this many data bytes (0: no limit),
	// counted across reconnects.
	MaxBytes uint64
	// FailOnLoss makes Next return the OUT_OF_RANGE error when a reconnect
	// finds the resume position no longer retained, instead of reporting
	// the loss (ReadItem.Lost) and continuing from the oldest byte retained.
	FailOnLoss bool
}

// ReadItem is one event of a Read stream: exactly one field is set.
type ReadItem struct {
	// Data is a run of guest-to-host bytes.
	Data *xenchanpb.DataChunk
	// Gap reports bytes evicted before the stream reached them.
	Gap *xenchanpb.Gap
	// EpochChange reports the stream moving to a new epoch.
	EpochChange *xenchanpb.EpochChange
	// Lost is set when, after a reconnect, the position the iterator resumed
	// from was no longer retained (xenchand restarted and its buffers went
	// with it, or the bytes were evicted meanwhile): the bytes from
	// Lost.RequestedPosition up to Lost.EarliestPosition were not delivered,
	// and the stream continues at EarliestPosition.
	Lost *xenchanpb.RetainedRange
}

// ReadIterator is a Read stream that reconnects by itself: after an
// UNAVAILABLE error (xenchand restarting, the connection dropping) it waits
// according to the client's RetryPolicy and reopens the stream at the
// position after the last item it returned, so no byte is returned twice and
// none is skipped silently. Not safe for concurrent use.
type ReadIterator struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	channel string
	opts    ReadOptions
	stream  xenchanpb.ChannelService_ReadClient
	pos     *xenchanpb.Position
	sent    uint64
	resumed bool // a reconnect happened: an unretained position is a loss
	fresh   bool // no message yet on the current stream
	err     error
	pending []*ReadItem
}

// Read opens a reading stream of channel's guest-to-host data.
func (c *Client) Read(ctx context.Context, channel string, opts ReadOptions) *ReadIterator {
	ctx, cancel := context.WithCancel(ctx)
	return &ReadIterator{c: c, ctx: ctx, cancel: cancel, channel: channel, opts: opts}
}

// Position returns the position one past the last byte (or gap) Next
// returned, the place to resume from; nil before any.
func (it *ReadIterator) Position() *xenchanpb.Position { return it.pos }

// Close ends the stream; Next then returns CANCELED.
func (it *ReadIterator) Close() { it.cancel() }

// Next returns the next item; Done when the stream ended normally (not
// following, or MaxBytes reached); otherwise the error that ended it: not
// retryable, or UNAVAILABLE once the RetryPolicy is used up.
func (it *ReadIterator) Next() (*ReadItem, error) {
	if len(it.pending) > 0 {
		item := it.pending[0]
		it.pending = it.pending[1:]
		return item, nil
	}
	if it.err != nil {
		return nil, it.err
	}
	for failures := 0; ; {
		if it.stream == nil {
			if err := it.open(); err != nil {
				if lost := it.lossOf(err); lost != nil {
					continue
				}
				if !isRetryable(err) || it.c.retry.exhausted(failures+1) {
					it.err = err
					return nil, err
				}
				failures++
				if werr := it.c.retry.wait(it.ctx, failures, err); werr != nil {
					it.err = werr
					return nil, werr
				}
				continue
			}
			if len(it.pending) > 0 {
				return it.Next()
			}
		}
		m, err := it.stream.Recv()
		if err == io.EOF {
			it.err = Done
			return nil, Done
		}
		if err != nil {
			err = wrapError(err)
			it.stream = nil
			// A stream's open error arrives with its first Recv.
			if it.fresh && it.lossOf(err) != nil {
				return it.Next()
			}
			if !isRetryable(err) || it.c.retry.exhausted(failures+1) {
				it.err = err
				return nil, err
			}
			failures++
			if werr := it.c.retry.wait(it.ctx, failures, err); werr != nil {
				it.err = werr
				return nil, werr
			}
			it.resumed = true
			continue
		}
		it.fresh = false
		return it.take(m), nil
	}
}

// open starts (or restarts) the stream at the original start point or at
// the position after the last item returned.
func (it *ReadIterator) open() error {
	req := &xenchanpb.ReadRequest{Channel: it.channel, Start: it.opts.Start, Follow: it.opts.Follow}
	if it.pos != nil {
		req.Start = &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: it.pos}}
	}
	if it.opts.MaxBytes > 0 {
		if it.sent >= it.opts.MaxBytes {
			return Done
		}
		req.MaxBytes = it.opts.MaxBytes - it.sent
	}
	s, err := it.c.rpc.Read(it.ctx, req)
	if err != nil {
		return wrapError(err)
	}
	it.stream, it.fresh = s, true
	return nil
}

// lossOf handles OFFSET_NOT_RETAINED met on a reconnect: unless FailOnLoss,
// it queues a Lost item, moves the position to the oldest retained byte and
// returns the loss; otherwise nil.
func (it *ReadIterator) lossOf(err error) *xenchanpb.RetainedRange {
	var e *Error
	if !it.resumed || it.opts.FailOnLoss || !errors.As(err, &e) || e.Code != codes.OutOfRange ||
		e.Reason != xenchanpb.ErrorReason_ERROR_REASON_OFFSET_NOT_RETAINED {
		return nil
	}
	lost := e.RetainedRange()
	if lost == nil {
		lost = &xenchanpb.RetainedRange{RequestedPosition: it.pos}
	}
	it.pos = lost.GetEarliestPosition()
	if it.pos == nil {
		// Nothing retained at all: start over from the oldest byte.
		it.opts.Start = &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Anchor{Anchor: xenchanpb.StartAnchor_START_ANCHOR_EARLIEST}}
	}
	it.pending = append(it.pending, &ReadItem{Lost: lost})
	return lost
}

// take converts one message and advances the position past it.
func (it *ReadIterator) take(m *xenchanpb.ReadResponse) *ReadItem {
	switch ev := m.Event.(type) {
	case *xenchanpb.ReadResponse_Data:
		d := ev.Data
		it.pos = &xenchanpb.Position{Epoch: d.GetEpoch(), Offset: d.GetOffset() + uint64(len(d.GetData()))}
		it.sent += uint64(len(d.GetData()))
		return &ReadItem{Data: d}
	case *xenchanpb.ReadResponse_Gap:
		g := ev.Gap
		it.pos = &xenchanpb.Position{Epoch: g.GetEpoch(), Offset: g.GetOffset() + g.GetLength()}
		return &ReadItem{Gap: g}
	case *xenchanpb.ReadResponse_EpochChange:
		it.pos = &xenchanpb.Position{Epoch: ev.EpochChange.GetEpoch(), Offset: 0}
		return &ReadItem{EpochChange: ev.EpochChange}
	}
	// A message kind newer than this SDK: returned empty, position kept.
	return &ReadItem{}
}
