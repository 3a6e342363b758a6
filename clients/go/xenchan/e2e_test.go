// End-to-end tests of the SDK against the real xenchand on xensim, with the
// real xenchan-agent in a simulated guest (internal/xenchantest).

package xenchan_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

const agentChannel = "org.xenchan.agent.0"

// env is a host with guests vm1 (agent channel connected, agent running)
// and vm2 (no channel), and a client on the Unix socket.
type env struct {
	h      *xenchantest.Host
	c      *xenchan.Client
	ch     string // vm1's agent channel, by UUID
	vm1    *xenchanpb.Domain
	target string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	h := xenchantest.StartHost(t)
	h.CreateDomain("vm1")
	h.CreateDomain("vm2")
	ctx := testContext(t)
	c, err := xenchan.DialUnix(ctx, h.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{
		Parent: xenchan.DomainName("vm1"), ChannelId: agentChannel, WaitUntilConnected: true,
		Config: &xenchanpb.ChannelConfig{Lifetime: xenchanpb.ChannelLifetime_CHANNEL_LIFETIME_DURABLE},
	})
	if err != nil {
		t.Fatalf("CreateChannel: %v\n%s", err, h.Server.Log())
	}
	agent := h.StartAgent("vm1", t.TempDir())
	if !agent.WaitForLog("(raw)", 30*time.Second) {
		t.Fatalf("agent did not open its channel:\n%s", agent.Log())
	}
	vm1, err := c.GetDomain(ctx, "domains/vm1")
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, c: c, ch: ch.GetName(), vm1: vm1}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func asError(t *testing.T, err error) *xenchan.Error {
	t.Helper()
	var xerr *xenchan.Error
	if !errors.As(err, &xerr) {
		t.Fatalf("error %v (%T) is not a *xenchan.Error", err, err)
	}
	return xerr
}

// readUntil reads the channel's output from `from` until it contains want.
func readUntil(t *testing.T, c *xenchan.Client, ch string, from *xenchanpb.ReadStart, want string) []*xenchan.ReadItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), 30*time.Second)
	defer cancel()
	it := c.Read(ctx, ch, xenchan.ReadOptions{Start: from, Follow: true})
	defer it.Close()
	var got bytes.Buffer
	var items []*xenchan.ReadItem
	for !strings.Contains(got.String(), want) {
		item, err := it.Next()
		if err != nil {
			t.Fatalf("reading for %q: %v; got %q", want, err, got.String())
		}
		items = append(items, item)
		if item.Data != nil {
			got.Write(item.Data.GetData())
		}
	}
	return items
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	c := e.c

	t.Run("ListAndGet", func(t *testing.T) {
		domains, err := c.ListDomains(ctx).All()
		if err != nil || len(domains) != 2 {
			t.Fatalf("ListDomains = %v, %v; want vm1 and vm2", domains, err)
		}
		if e.vm1.GetDisplayName() != "vm1" || e.ch != xenchan.ChannelName(e.vm1.GetUuid(), agentChannel) {
			t.Errorf("vm1 = %v, channel %s", e.vm1, e.ch)
		}
		chans, err := c.ListChannels(ctx, xenchan.AllDomains, &xenchan.ListChannelsOptions{PageSize: 1}).All()
		if err != nil || len(chans) != 1 || chans[0].GetName() != e.ch {
			t.Fatalf("ListChannels = %v, %v", chans, err)
		}
		got, err := c.GetChannel(ctx, xenchan.ChannelName("vm1", agentChannel))
		if err != nil || got.GetState() != xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED {
			t.Fatalf("GetChannel = %v, %v", got, err)
		}
	})

	t.Run("Call", func(t *testing.T) {
		r, err := c.Call(ctx, e.ch, []byte(`{"op":"ping"}`))
		if err != nil || !strings.Contains(string(r.GetResponse()), `"op":"pong"`) {
			t.Fatalf("Call = %q, %v", r.GetResponse(), err)
		}
	})

	t.Run("TypedErrors", func(t *testing.T) {
		_, err := c.GetChannel(ctx, xenchan.ChannelName("vm1", "org.example.missing"))
		xerr := asError(t, err)
		if xerr.Code != codes.NotFound || xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_CHANNEL_NOT_FOUND ||
			xerr.ReasonName != "CHANNEL_NOT_FOUND" {
			t.Errorf("missing channel: %v", xerr)
		}
		_, err = c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: "domains/vm1", ChannelId: agentChannel})
		if xerr = asError(t, err); xerr.Code != codes.AlreadyExists || xerr.Channel().GetName() != e.ch {
			t.Errorf("duplicate channel: %v, detail %v", xerr, xerr.Channel())
		}
		_, err = c.GetDomain(ctx, "domains/a/b")
		if xerr = asError(t, err); xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_INVALID_NAME {
			t.Errorf("bad name: %v", xerr)
		}
		_, err = c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: "domains/vm2", ChannelId: "x",
			Config: &xenchanpb.ChannelConfig{BufferLimitBytes: 1}})
		if xerr = asError(t, err); xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_INVALID_OPTION ||
			len(xerr.BadRequest().GetFieldViolations()) == 0 {
			t.Errorf("bad option: %v, %v", xerr, xerr.BadRequest())
		}
		far := &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: &xenchanpb.Position{Epoch: 999999999, Offset: 5}}}
		_, err = c.Read(ctx, e.ch, xenchan.ReadOptions{Start: far}).Next()
		if xerr = asError(t, err); xerr.Code != codes.OutOfRange || xerr.RetainedRange().GetRequestedPosition().GetEpoch() != 999999999 {
			t.Errorf("unretained offset: %v, %v", xerr, xerr.RetainedRange())
		}
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		<-short.Done()
		_, err = c.GetDomain(short, "domains/vm1")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("expired context: %v", err)
		}
	})

	t.Run("WriteAndRead", func(t *testing.T) {
		before, err := c.GetChannel(ctx, e.ch)
		if err != nil {
			t.Fatal(err)
		}
		line := []byte(`{"op":"ping","id":"w1"}` + "\n")
		p, err := c.Write(ctx, e.ch, line, &xenchan.WriteOptions{AckLevel: xenchanpb.AckLevel_ACK_LEVEL_CONSUMED})
		if err != nil || p.GetAcceptedBytes() != uint64(len(line)) || p.GetConsumedBytes() != uint64(len(line)) {
			t.Fatalf("Write = %v, %v", p, err)
		}
		from := &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: before.GetFromGuest().GetNextPosition()}}
		readUntil(t, c, e.ch, from, `"id":"w1"`)
	})

	t.Run("AttachSession", func(t *testing.T) {
		s, err := c.Attach(ctx, e.ch, xenchan.AttachOptions{Writer: true, AckLevel: xenchanpb.AckLevel_ACK_LEVEL_CONSUMED})
		if err != nil {
			t.Fatal(err)
		}
		// The lease is held: a Write fails with LEASE_HELD naming the session.
		_, err = c.Write(ctx, e.ch, []byte("x"), nil)
		if xerr := asError(t, err); xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_LEASE_HELD ||
			xerr.LeaseHolder().GetSessionId() != s.Opened().GetSessionId() {
			t.Errorf("write under a lease: %v, holder %v", xerr, xerr.LeaseHolder())
		}
		seq, err := s.Send([]byte(`{"op":"ping","id":"a1"}`+"\n"), s.Opened().GetChannel().GetEpoch())
		if err != nil {
			t.Fatal(err)
		}
		ack, err := s.WaitAck(ctx, seq, xenchanpb.AckLevel_ACK_LEVEL_CONSUMED)
		if err != nil || ack.GetSequenceId() < seq {
			t.Fatalf("WaitAck = %v, %v", ack, err)
		}
		var got bytes.Buffer
		buf := make([]byte, 7)
		for !strings.Contains(got.String(), `"id":"a1"`) {
			n, err := s.Read(buf)
			if err != nil {
				t.Fatalf("Read: %v (got %q)", err, got.String())
			}
			got.Write(buf[:n])
		}
		// A write in a stale epoch is rejected, and the session goes on.
		stale, _ := s.Send([]byte("ignored\n"), 1)
		if _, err := s.WaitAck(ctx, stale, xenchanpb.AckLevel_ACK_LEVEL_ACCEPTED); ReasonOf(err) != xenchanpb.ErrorReason_ERROR_REASON_EPOCH_CHANGED {
			t.Errorf("stale epoch write: %v", err)
		}
		select {
		case ev := <-s.Events():
			if ev.GetWriteRejection() == nil {
				t.Errorf("event %v, want the rejection", ev)
			}
		case <-ctx.Done():
			t.Fatal("no rejection event")
		}
		if _, err := s.Write([]byte(`{"op":"ping"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, ok := <-s.Events(); ok {
			t.Error("events open after Close")
		}
	})

	t.Run("UpdateChannel", func(t *testing.T) {
		got, err := c.UpdateChannel(ctx, &xenchanpb.Channel{Name: e.ch, Config: &xenchanpb.ChannelConfig{BufferLimitBytes: 2 << 20}},
			"config.buffer_limit_bytes")
		if err != nil || got.GetConfig().GetBufferLimitBytes() != 2<<20 {
			t.Fatalf("UpdateChannel = %v, %v", got, err)
		}
	})

	t.Run("WatchCreateDelete", func(t *testing.T) {
		w := c.Watch(ctx, xenchan.AllDomains, xenchan.WatchOptions{})
		defer w.Close()
		expect := func(typ xenchanpb.ChannelEventType) *xenchanpb.WatchChannelsResponse {
			t.Helper()
			for {
				m, err := w.Next()
				if err != nil {
					t.Fatalf("waiting for %v: %v", typ, err)
				}
				if m.GetType() == typ {
					return m
				}
			}
		}
		expect(xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_SYNCED)
		if _, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: "domains/vm2", ChannelId: "org.example.w"}); err != nil {
			t.Fatal(err)
		}
		if m := expect(xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_APPEARED); !strings.HasSuffix(m.GetChannel().GetName(), "/org.example.w") {
			t.Errorf("appeared %v", m.GetChannel().GetName())
		}
		if _, err := c.DeleteChannel(ctx, &xenchanpb.DeleteChannelRequest{Name: xenchan.ChannelName("vm2", "org.example.w"),
			ForceAfter: durationpb.New(0)}); err != nil {
			t.Fatal(err)
		}
		expect(xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_REMOVED)
		if w.Revision() == 0 {
			t.Error("no resume revision")
		}
	})
}

// ReasonOf is the package function, named locally for brevity.
var ReasonOf = xenchan.ReasonOf

// Read and Watch ride out a xenchand restart: the read iterator reports the
// lost buffer and continues in the new epoch; the watcher resumes or
// relists and sees the channel connect again.
func TestStreamsResumeAcrossServerRestart(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	c := e.c
	if _, err := c.Call(ctx, e.ch, []byte(`{"op":"ping","id":"before"}`)); err != nil {
		t.Fatal(err)
	}
	it := c.Read(ctx, e.ch, xenchan.ReadOptions{Follow: true})
	defer it.Close()
	w := c.Watch(ctx, xenchan.DomainName("vm1"), xenchan.WatchOptions{})
	defer w.Close()
	var got bytes.Buffer
	for !strings.Contains(got.String(), `"id":"before"`) {
		item, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		got.Write(item.Data.GetData())
	}
	for {
		m, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetType() == xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_SYNCED {
			break
		}
	}
	epochBefore := it.Position().GetEpoch()

	e.h.Server.Stop()
	e.h.StartServer()

	// The watcher sees the channel connected in a new epoch.
	for {
		m, err := w.Next()
		if err != nil {
			t.Fatalf("watch after restart: %v", err)
		}
		if m.GetChannel().GetState() == xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED && m.GetChannel().GetEpoch() > epochBefore {
			break
		}
	}
	if _, err := c.Call(ctx, e.ch, []byte(`{"op":"ping","id":"after"}`)); err != nil {
		t.Fatalf("Call after restart: %v", err)
	}
	var sawNewEpoch, sawLost bool
	got.Reset()
	for !strings.Contains(got.String(), `"id":"after"`) {
		item, err := it.Next()
		if err != nil {
			t.Fatalf("read after restart: %v", err)
		}
		if item.Lost != nil {
			// xenchand's buffer went with it: the loss is reported, from
			// where the iterator stood.
			sawLost = item.Lost.GetRequestedPosition().GetEpoch() == epochBefore
		}
		if item.Data != nil {
			got.Write(item.Data.GetData())
			sawNewEpoch = sawNewEpoch || item.Data.GetEpoch() > epochBefore
		}
	}
	if !sawLost {
		t.Error("no Lost item for the buffer xenchand lost")
	}
	if !sawNewEpoch || strings.Contains(got.String(), `"id":"before"`) {
		t.Errorf("after the restart read %q (new epoch seen: %v)", got.String(), sawNewEpoch)
	}
}
