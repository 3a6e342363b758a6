// Write: a stream of host-to-guest bytes acknowledged at a chosen level.

package xenchan

import (
	"context"
	"errors"
	"io"
	"sync"

	"xenchan.dev/go/xenchanpb"
)

// MaxChunk is the largest data payload of one stream message (64 KiB); the
// SDK splits larger writes.
const MaxChunk = 64 << 10

// WriteOptions are the options of a Write stream. The zero value waits for
// ACK_LEVEL_ACCEPTED.
type WriteOptions struct {
	// AckLevel is the level every byte must reach before the stream answers:
	// ACCEPTED (queued), DELIVERED (in the guest's ring) or CONSUMED (taken
	// by the guest kernel; RING channels only). Give ctx a deadline when
	// waiting for DELIVERED or CONSUMED.
	AckLevel xenchanpb.AckLevel
	// ExpectedEpoch, if not 0, refuses the write unless the channel is in
	// this epoch throughout (ABORTED, EPOCH_CHANGED).
	ExpectedEpoch uint64
	// FailFast fails with QUEUE_FULL instead of waiting for room in the
	// write queue.
	FailFast bool
	// Takeover takes the write lease from its holder (admin verb).
	Takeover bool
}

// Writer is an open Write stream: an io.WriteCloser whose Close waits for
// every byte to reach the ack level. Not safe for concurrent use.
type Writer struct {
	stream   xenchanpb.ChannelService_WriteClient
	first    *xenchanpb.WriteRequest
	closed   bool
	progress *xenchanpb.WriteProgress
	err      error
	once     sync.Once
}

// NewWriter opens a Write stream on channel; it takes the write lease with
// its first message (on the first Write, or at Close if nothing was
// written). opts may be nil. The stream lives until Close or until ctx ends.
func (c *Client) NewWriter(ctx context.Context, channel string, opts *WriteOptions) (*Writer, error) {
	if opts == nil {
		opts = &WriteOptions{}
	}
	s, err := c.rpc.Write(ctx)
	if err != nil {
		return nil, wrapError(err)
	}
	return &Writer{stream: s, first: &xenchanpb.WriteRequest{
		Channel: channel, AckLevel: opts.AckLevel, ExpectedEpoch: opts.ExpectedEpoch,
		FailFast: opts.FailFast, Takeover: opts.Takeover,
	}}, nil
}

// Write sends p (in messages of at most MaxChunk bytes) and returns once the
// messages are handed to gRPC; gRPC flow control makes it wait while the
// channel's write queue is full. Errors end the stream: the *Error then
// carries a WriteProgress detail saying what was accepted.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("xenchan: write on a closed Writer")
	}
	n := 0
	for first := true; first || n < len(p); first = false {
		end := n + MaxChunk
		if end > len(p) {
			end = len(p)
		}
		if err := w.send(p[n:end]); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

func (w *Writer) send(data []byte) error {
	req := &xenchanpb.WriteRequest{Data: data}
	if w.first != nil {
		req, w.first = w.first, nil
		req.Data = data
	}
	if err := w.stream.Send(req); err != nil {
		// The server ended the stream: its status says why.
		w.finish()
		return w.err
	}
	return nil
}

func (w *Writer) finish() {
	w.once.Do(func() {
		w.closed = true
		r, err := w.stream.CloseAndRecv()
		w.progress, w.err = r.GetProgress(), wrapError(err)
		if w.err != nil {
			if e, ok := w.err.(*Error); ok && e.WriteProgress() != nil {
				w.progress = e.WriteProgress()
			}
		}
	})
}

// Close half-closes the stream, waits until every byte has reached the ack
// level, and returns the stream's error if any.
func (w *Writer) Close() error {
	if w.first != nil && !w.closed {
		if err := w.send(nil); err != nil {
			return err
		}
	}
	w.finish()
	return w.err
}

// Progress is what the stream achieved: after Close, the server's final
// WriteProgress (also when it failed, where known); nil before.
func (w *Writer) Progress() *xenchanpb.WriteProgress { return w.progress }

// Write sends data to the guest on channel in one Write stream and waits
// for it to reach opts.AckLevel (opts may be nil). Not retried: on error the
// returned progress (also in the *Error's WriteProgress) says what reached
// the guest.
func (c *Client) Write(ctx context.Context, channel string, data []byte, opts *WriteOptions) (*xenchanpb.WriteProgress, error) {
	w, err := c.NewWriter(ctx, channel, opts)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return w.Progress(), err
	}
	err = w.Close()
	return w.Progress(), err
}

var _ io.WriteCloser = (*Writer)(nil)
