// Attach: an interactive session as an io.ReadWriteCloser, with write
// acknowledgements and epoch events on the side.

package xenchan

import (
	"context"
	"errors"
	"io"
	"sync"

	"xenchan.dev/go/xenchanpb"
)

// AttachOptions open a Session. The zero value opens an observer that
// receives only new data.
type AttachOptions struct {
	// Writer opens a writer session (holding the write lease); otherwise an
	// observer.
	Writer bool
	// Start is where guest output starts; nil means START_ANCHOR_NEXT.
	Start *xenchanpb.ReadStart
	// AckLevel (writers) is the highest level writes are acknowledged at;
	// unset means ACCEPTED.
	AckLevel xenchanpb.AckLevel
	// Takeover (writers) takes the lease from its holder (admin verb).
	Takeover bool
	// FailFast (writers) rejects writes that find the queue full instead of
	// waiting.
	FailFast bool
}

// maxBuffered bounds the guest output a Session holds for Read; beyond it
// the session stops receiving (acks and events wait too) until Read
// catches up.
const maxBuffered = 4 << 20

// Session is an open Attach stream. Read returns the guest's output, Write
// sends input (writers), Close half-closes and waits for the outstanding
// acknowledgements. Everything else the server says (epoch changes, gaps,
// stall notices, state changes, write rejections, lease loss) arrives on
// Events, and acknowledgements through WaitAck and Acked. One goroutine may
// Read while another Writes; Events may be drained by a third.
type Session struct {
	stream xenchanpb.ChannelService_AttachClient
	cancel context.CancelFunc
	opened *xenchanpb.AttachOpened
	events chan *xenchanpb.AttachResponse

	sendMu sync.Mutex
	seq    uint64

	mu         sync.Mutex
	cond       *sync.Cond
	data       []*xenchanpb.DataChunk
	buffered   int
	pos        *xenchanpb.Position
	acked      map[xenchanpb.AckLevel]*xenchanpb.WriteAck
	rejections []*xenchanpb.WriteRejection
	queue      []*xenchanpb.AttachResponse
	end        error // io.EOF after an OK end
}

// Attach opens a session on channel and waits for the server's `opened`.
// The session lives until Close or until ctx ends. Errors at open:
// INVALID_NAME, INVALID_OPTION, DOMAIN_NOT_FOUND, CHANNEL_NOT_FOUND,
// NOT_CONNECTED (closing channel), LEASE_HELD, ACK_LEVEL_NOT_SUPPORTED,
// TOO_MANY_OBSERVERS, OFFSET_NOT_RETAINED, ...
func (c *Client) Attach(ctx context.Context, channel string, opts AttachOptions) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Attach(ctx)
	if err != nil {
		cancel()
		return nil, wrapError(err)
	}
	open := &xenchanpb.AttachOpen{Channel: channel, Role: xenchanpb.SessionRole_SESSION_ROLE_OBSERVER, Start: opts.Start}
	if opts.Writer {
		open.Role = xenchanpb.SessionRole_SESSION_ROLE_WRITER
		open.AckLevel, open.Takeover, open.FailFast = opts.AckLevel, opts.Takeover, opts.FailFast
	}
	if err := stream.Send(&xenchanpb.AttachRequest{Kind: &xenchanpb.AttachRequest_Open{Open: open}}); err != nil && err != io.EOF {
		cancel()
		return nil, wrapError(err)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, wrapError(err)
	}
	s := &Session{
		stream: stream, cancel: cancel, opened: first.GetOpened(),
		events: make(chan *xenchanpb.AttachResponse),
		acked:  map[xenchanpb.AckLevel]*xenchanpb.WriteAck{},
		pos:    first.GetOpened().GetStartPosition(),
	}
	s.cond = sync.NewCond(&s.mu)
	go s.receive()
	go s.pump()
	return s, nil
}

// Opened returns the server's `opened` message: session id, role, the
// channel as it was, and the first position of the output.
func (s *Session) Opened() *xenchanpb.AttachOpened { return s.opened }

// Events returns the session's non-data server messages in stream order
// (epoch_change, gap, stall, state_change, write_rejection, lease_lost; not
// data or write_ack). It is closed when the stream ends. Events are queued
// without bound until taken.
func (s *Session) Events() <-chan *xenchanpb.AttachResponse { return s.events }

func (s *Session) receive() {
	for {
		m, err := s.stream.Recv()
		s.mu.Lock()
		if err != nil {
			if err == io.EOF {
				s.end = io.EOF
			} else {
				s.end = wrapError(err)
			}
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		switch ev := m.Event.(type) {
		case *xenchanpb.AttachResponse_Data:
			for s.buffered >= maxBuffered && s.end == nil {
				s.cond.Wait()
			}
			s.data = append(s.data, ev.Data)
			s.buffered += len(ev.Data.GetData())
		case *xenchanpb.AttachResponse_WriteAck:
			a := ev.WriteAck
			if prev := s.acked[a.GetLevel()]; prev == nil || prev.GetSequenceId() < a.GetSequenceId() {
				s.acked[a.GetLevel()] = a
			}
		case *xenchanpb.AttachResponse_WriteRejection:
			s.rejections = append(s.rejections, ev.WriteRejection)
			s.queue = append(s.queue, m)
		default:
			s.queue = append(s.queue, m)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// pump moves queued events to the Events channel, closing it at the end.
func (s *Session) pump() {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && s.end == nil {
			s.cond.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			close(s.events)
			return
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.events <- m
	}
}

// Read reads guest output. It blocks until output arrives; at the end of
// the stream it returns io.EOF (ended OK) or the *Error that ended it, once
// the buffered output has been read.
func (s *Session) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.data) == 0 && s.end == nil {
		s.cond.Wait()
	}
	if len(s.data) == 0 {
		return 0, s.end
	}
	n := 0
	for n < len(p) && len(s.data) > 0 {
		d := s.data[0]
		c := copy(p[n:], d.GetData())
		n += c
		s.pos = &xenchanpb.Position{Epoch: d.GetEpoch(), Offset: d.GetOffset() + uint64(c)}
		if c == len(d.GetData()) {
			s.data = s.data[1:]
		} else {
			s.data[0] = &xenchanpb.DataChunk{Epoch: d.GetEpoch(), Offset: d.GetOffset() + uint64(c), Data: d.GetData()[c:]}
		}
	}
	s.buffered -= n
	s.cond.Broadcast()
	return n, nil
}

// Write sends p as writes of at most MaxChunk bytes (writers only) and
// returns once they are handed to gRPC; it does not wait for
// acknowledgements (see Send and WaitAck).
func (s *Session) Write(p []byte) (int, error) {
	n := 0
	for first := true; first || n < len(p); first = false {
		end := n + MaxChunk
		if end > len(p) {
			end = len(p)
		}
		if _, err := s.Send(p[n:end], 0); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

// Send sends one write of at most MaxChunk bytes, accepted only in
// expectedEpoch if that is not 0, and returns its sequence id for WaitAck.
func (s *Session) Send(data []byte, expectedEpoch uint64) (uint64, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.seq++
	err := s.stream.Send(&xenchanpb.AttachRequest{Kind: &xenchanpb.AttachRequest_Write{Write: &xenchanpb.AttachWrite{
		SequenceId: s.seq, Data: data, ExpectedEpoch: expectedEpoch,
	}}})
	if err != nil {
		return s.seq, s.endError()
	}
	return s.seq, nil
}

// endError waits for the stream's end after a failed Send and returns why.
func (s *Session) endError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.end == nil {
		s.cond.Wait()
	}
	if s.end == io.EOF {
		return errors.New("xenchan: session ended")
	}
	return s.end
}

// WaitAck blocks until write seq has reached level and returns the
// acknowledgement that covers it; an *Error made from the WriteRejection if
// the write was rejected (NOT_CONNECTED, QUEUE_FULL, EPOCH_CHANGED); the
// stream's error if it ended first; or ctx's error.
func (s *Session) WaitAck(ctx context.Context, seq uint64, level xenchanpb.AckLevel) (*xenchanpb.WriteAck, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		case <-done:
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for _, r := range s.rejections {
			if r.GetFirstSequenceId() <= seq && seq <= r.GetLastSequenceId() {
				return nil, rejectionError(r)
			}
		}
		if a := s.acked[level]; a != nil && a.GetSequenceId() >= seq {
			return a, nil
		}
		if s.end != nil {
			if s.end == io.EOF {
				return nil, errors.New("xenchan: session ended before the acknowledgement")
			}
			return nil, s.end
		}
		if ctx.Err() != nil {
			return nil, wrapError(ctx.Err())
		}
		s.cond.Wait()
	}
}

// Acked returns the newest acknowledgement at level, or nil.
func (s *Session) Acked(level xenchanpb.AckLevel) *xenchanpb.WriteAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[level]
}

// Position returns the position one past the last output byte Read
// returned (before any: the session's start position, nil if the channel
// had not connected when the session opened).
func (s *Session) Position() *xenchanpb.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Close half-closes the session: a writer's stream ends once the
// outstanding writes are acknowledged at the session's ack level and the
// lease is released. It waits for the end and returns nil for a clean end,
// otherwise the *Error that ended it. Unread output is discarded.
func (s *Session) Close() error {
	s.sendMu.Lock()
	_ = s.stream.CloseSend()
	s.sendMu.Unlock()
	s.mu.Lock()
	s.data, s.buffered = nil, 0
	s.cond.Broadcast()
	for s.end == nil {
		s.cond.Wait()
		s.data, s.buffered = nil, 0
		s.cond.Broadcast()
	}
	end := s.end
	s.mu.Unlock()
	s.cancel()
	if end == io.EOF {
		return nil
	}
	return end
}

var _ io.ReadWriteCloser = (*Session)(nil)
