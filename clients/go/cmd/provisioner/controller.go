// The controller: watch agent channels, provision each connected guest once
// (once per spec, as the guest's agent records it), with bounded concurrency
// and retries.

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// Controller provisions guests whose agent channel connects. Run it once.
type Controller struct {
	Client      *xenchan.Client
	Parent      string // domains/- or one domain
	ChannelID   string // the agent's channel, org.xenchan.agent.0
	SpecDir     string
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

// provision applies the domain's spec unless the guest's agent says, in its
// facts, that this spec is applied: the guest is the source of truth, so a
// restarted, reinstalled or second controller never provisions twice.
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
	agent := &agentConn{client: c.Client, channel: ch.GetName(), timeout: c.CallTimeout}
	// hello first: it waits out a guest tty still in cooked mode (which
	// would echo a request; clients/agent/README.md, "A known window") and
	// checks that the agent records spec ids.
	if err := agent.hello(ctx); err != nil {
		if errors.Is(err, errAgentTooOld) {
			return fmt.Errorf("%w: %v", errPermanent, err)
		}
		return err
	}
	applied, invalid, err := agent.facts(ctx)
	if err != nil {
		return err
	}
	if invalid {
		c.Log.Warn("the guest reported an invalid provisioned record; provisioning", "domain", uuid)
	}
	if applied != nil && applied.SpecID == digest {
		c.Log.Info("already provisioned", "domain", uuid, "digest", digest, "at", applied.At)
		return nil
	}
	start := time.Now()
	written, err := agent.provision(ctx, spec, digest)
	if err != nil {
		return err
	}
	c.Log.Info("provisioned", "domain", uuid, "name", dom.GetDisplayName(), "spec", path, "digest", digest,
		"written", written, "ms", time.Since(start).Milliseconds())
	return nil
}
