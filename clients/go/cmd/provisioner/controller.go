// The controller: watch agent channels, provision each connected guest once,
// with bounded concurrency and retries.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// Controller provisions guests whose agent channel connects. Run it once.
type Controller struct {
	Client      *xenchan.Client
	Parent      string // domains/- or one domain
	ChannelID   string // the agent's channel, org.xenchan.agent.0
	SpecDir     string
	State       State
	Concurrency int
	Retry       xenchan.RetryPolicy
	CallTimeout time.Duration
	Log         *Logger

	mu       sync.Mutex
	inflight map[string]bool // domain UUIDs queued or being provisioned
	again    map[string]bool // connected again while in flight: look once more
}

// Run watches until ctx ends (then returns nil) or the watch fails for good.
func (c *Controller) Run(ctx context.Context) error {
	c.inflight, c.again = map[string]bool{}, map[string]bool{}
	jobs := make(chan *xenchanpb.Channel)
	var wg sync.WaitGroup
	for i := 0; i < c.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range jobs {
				c.work(ctx, ch)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	w := c.Client.Watch(ctx, c.Parent, xenchan.WatchOptions{Filter: &xenchanpb.ChannelFilter{ChannelIdPrefix: c.ChannelID}})
	defer w.Close()
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		}
		if ev.GetType() == xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_SYNCED {
			c.Log.Info("synced", "revision", ev.GetRevision(), "relists", w.Relists())
		}
		ch := ev.GetChannel()
		if ch.GetChannelId() != c.ChannelID || ch.GetState() != xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED {
			continue
		}
		if !c.claim(ch.GetDomainUuid()) {
			continue
		}
		select {
		case jobs <- ch:
		case <-ctx.Done():
			return nil
		}
	}
}

// claim marks uuid in flight; false if it already is (then it is looked at
// once more when the current job ends).
func (c *Controller) claim(uuid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[uuid] {
		c.again[uuid] = true
		return false
	}
	c.inflight[uuid] = true
	return true
}

func (c *Controller) work(ctx context.Context, ch *xenchanpb.Channel) {
	for {
		c.provisionWithRetries(ctx, ch)
		c.mu.Lock()
		again := c.again[ch.GetDomainUuid()]
		delete(c.again, ch.GetDomainUuid())
		if !again || ctx.Err() != nil {
			delete(c.inflight, ch.GetDomainUuid())
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// errPermanent marks failures a retry cannot fix (bad spec, agent refusal).
var errPermanent = errors.New("permanent")

func (c *Controller) provisionWithRetries(ctx context.Context, ch *xenchanpb.Channel) {
	uuid := ch.GetDomainUuid()
	for attempt := 1; ; attempt++ {
		err := c.provision(ctx, ch)
		if err == nil || ctx.Err() != nil {
			return
		}
		if errors.Is(err, errPermanent) {
			c.Log.Error("provisioning failed", "domain", uuid, "error", err)
			return
		}
		if c.Retry.MaxAttempts > 0 && attempt >= c.Retry.MaxAttempts {
			c.Log.Error("provisioning failed; giving up until the channel connects again", "domain", uuid, "attempts", attempt, "error", err)
			return
		}
		d := c.Retry.Backoff(attempt)
		c.Log.Warn("provisioning failed; retrying", "domain", uuid, "attempt", attempt, "backoff", d.String(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// agentReply is the part of an agent reply the controller reads.
type agentReply struct {
	OK      *bool           `json:"ok"` // absent in an echo of the request
	Op      string          `json:"op"`
	ID      json.RawMessage `json:"id"`
	Written []string        `json:"written"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// provision applies the domain's spec unless the state says it is applied.
func (c *Controller) provision(ctx context.Context, ch *xenchanpb.Channel) error {
	uuid := ch.GetDomainUuid()
	dom, err := c.Client.GetDomain(ctx, xenchan.DomainName(uuid))
	if err != nil {
		return err
	}
	spec, path, err := LoadSpec(c.SpecDir, uuid, dom.GetDisplayName())
	if err != nil {
		return fmt.Errorf("%w: spec: %v", errPermanent, err)
	}
	if spec == nil {
		c.Log.Info("no spec; leaving the guest alone", "domain", uuid, "name", dom.GetDisplayName())
		return nil
	}
	digest := spec.Digest()
	rec, err := c.State.Get(uuid)
	if err != nil {
		return fmt.Errorf("%w: state: %v", errPermanent, err)
	}
	if rec != nil && rec.Digest == digest && rec.Done {
		c.Log.Info("already provisioned", "domain", uuid, "digest", digest)
		return nil
	}
	if rec != nil && rec.Digest == digest {
		// Asked before, answer not recorded: is the reply in the channel's
		// retained output?
		if reply := c.findReply(ctx, ch.GetName(), rec); reply != nil && *reply.OK {
			rec.Done = true
			c.Log.Info("provisioned before the restart (reply found in the channel)", "domain", uuid, "request", rec.RequestID)
			return c.State.Put(uuid, rec)
		}
	}
	now, err := c.Client.GetChannel(ctx, ch.GetName())
	if err != nil {
		return err
	}
	next := now.GetFromGuest().GetNextPosition()
	id := fmt.Sprintf("prov-%s-%d", digest, time.Now().UnixNano())
	rec = &Record{Digest: digest, RequestID: id, Epoch: next.GetEpoch(), Offset: next.GetOffset()}
	if err := c.State.Put(uuid, rec); err != nil {
		return fmt.Errorf("%w: state: %v", errPermanent, err)
	}
	req, err := spec.Request(id)
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Client.Call(cctx, ch.GetName(), req)
	if err != nil {
		return err
	}
	var reply agentReply
	if json.Unmarshal(resp.GetResponse(), &reply) != nil || string(reply.ID) != fmt.Sprintf("%q", id) || reply.OK == nil {
		// A late reply to something else, or the echo of our request by a
		// guest tty still in cooked mode (the agent had not opened it yet;
		// clients/agent/README.md, "A known window"): the next attempt looks
		// for the real reply in the channel first.
		return fmt.Errorf("unexpected reply %.200q", resp.GetResponse())
	}
	if !*reply.OK {
		code := ""
		if reply.Error != nil {
			code = reply.Error.Code + ": " + reply.Error.Message
		}
		if reply.Error != nil && reply.Error.Code == "IO_ERROR" {
			return errors.New(code)
		}
		return fmt.Errorf("%w: the agent refused %s: %s", errPermanent, path, code)
	}
	rec.Done = true
	if err := c.State.Put(uuid, rec); err != nil {
		return fmt.Errorf("%w: state: %v", errPermanent, err)
	}
	c.Log.Info("provisioned", "domain", uuid, "name", dom.GetDisplayName(), "spec", path,
		"written", len(reply.Written), "ms", time.Since(start).Milliseconds())
	return nil
}

// findReply scans the channel's retained output after the recorded
// position for the reply to the recorded request; nil if it is not there
// (or no longer retained).
func (c *Controller) findReply(ctx context.Context, channel string, rec *Record) *agentReply {
	rctx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	start := &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: &xenchanpb.Position{Epoch: rec.Epoch, Offset: rec.Offset}}}
	it := c.Client.Read(rctx, channel, xenchan.ReadOptions{Start: start, FailOnLoss: true})
	defer it.Close()
	var buf []byte
	for {
		item, err := it.Next()
		if err != nil {
			if err != xenchan.Done && xenchan.CodeOf(err) != codes.OutOfRange {
				c.Log.Warn("reading for an earlier reply", "channel", channel, "error", err)
			}
			return nil
		}
		if item.EpochChange != nil {
			return nil // the guest started over: the request died with its epoch
		}
		buf = append(buf, item.Data.GetData()...)
		for {
			nl := bytes.IndexByte(buf, '\n')
			if nl < 0 {
				break
			}
			var r agentReply
			if json.Unmarshal(bytes.TrimSpace(buf[:nl]), &r) == nil && string(r.ID) == fmt.Sprintf("%q", rec.RequestID) && r.OK != nil {
				return &r
			}
			buf = buf[nl+1:]
		}
	}
}
