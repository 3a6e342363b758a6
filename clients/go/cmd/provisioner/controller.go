// The controller: provision each connected guest once (once per spec, as
// the guest's agent records it), with one bounded pool of workers shared by
// every host it watches, and retries. One host's watch is hostloop.go; the
// fleet's hosts come and go in fleet.go.

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

// Controller provisions guests whose agent channel connects, on one host
// (Run) or on every host of a fleet (RunFleet). Its workers, its
// concurrency limit and its in-flight set are shared by all hosts: a domain
// (by UUID) is never provisioned twice at once, even while it moves between
// hosts. Run or RunFleet it once.
type Controller struct {
	Parent      string // domains/- or one domain
	ChannelID   string // the agent's channel, org.xenchan.agent.0
	SpecDir     string
	Concurrency int
	Retry       xenchan.RetryPolicy
	CallTimeout time.Duration
	Log         *Logger

	jobs     chan *job
	mu       sync.Mutex
	inflight map[string]bool // domain UUIDs being provisioned
	again    map[string]*job // connected again while in flight: the newest, looked at next
}

// job is one connected agent channel on one host.
type job struct {
	ctx    context.Context // the host loop's: ends when the host leaves or the controller stops
	client *xenchan.Client // the host's xenchand
	log    *Logger         // names the host
	ch     *xenchanpb.Channel
}

// Run watches the one xenchand client is connected to (host names it in the
// logs) until ctx ends (then returns nil) or the watch fails for good.
func (c *Controller) Run(ctx context.Context, client *xenchan.Client, host string) error {
	stop := c.startWorkers()
	defer stop()
	return c.watchHost(ctx, client, c.Log.With("host", host))
}

// startWorkers starts the Concurrency workers; stop closes the queue and
// waits for them, once no host loop submits any more.
func (c *Controller) startWorkers() (stop func()) {
	c.inflight, c.again = map[string]bool{}, map[string]*job{}
	c.jobs = make(chan *job)
	var wg sync.WaitGroup
	for i := 0; i < c.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range c.jobs {
				c.work(j)
			}
		}()
	}
	return func() { close(c.jobs); wg.Wait() }
}

// submit hands j to a worker; false if j's host loop ended first.
func (c *Controller) submit(j *job) bool {
	select {
	case c.jobs <- j:
		return true
	case <-j.ctx.Done():
		return false
	}
}

// claim marks j's domain in flight; false if it already is (then j is
// looked at when the current job ends, unless a newer one replaces it).
func (c *Controller) claim(j *job) bool {
	uuid := j.ch.GetDomainUuid()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[uuid] {
		c.again[uuid] = j
		return false
	}
	c.inflight[uuid] = true
	return true
}

// next returns the job recorded for uuid while it was in flight, or nil
// after releasing uuid.
func (c *Controller) next(uuid string) *job {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.again[uuid]
	delete(c.again, uuid)
	if j == nil || j.ctx.Err() != nil {
		delete(c.inflight, uuid)
		return nil
	}
	return j
}

func (c *Controller) work(j *job) {
	if !c.claim(j) {
		return
	}
	for j != nil {
		c.provisionWithRetries(j)
		j = c.next(j.ch.GetDomainUuid())
	}
}

// errPermanent marks failures a retry cannot fix (bad spec, agent refusal).
var errPermanent = errors.New("permanent")

func (c *Controller) provisionWithRetries(j *job) {
	uuid := j.ch.GetDomainUuid()
	for attempt := 1; ; attempt++ {
		err := c.provision(j)
		if err == nil || j.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errPermanent) {
			j.log.Error("provisioning failed", "domain", uuid, "error", err)
			return
		}
		if c.Retry.MaxAttempts > 0 && attempt >= c.Retry.MaxAttempts {
			j.log.Error("provisioning failed; giving up until the channel connects again", "domain", uuid, "attempts", attempt, "error", err)
			return
		}
		d := c.Retry.Backoff(attempt)
		j.log.Warn("provisioning failed; retrying", "domain", uuid, "attempt", attempt, "backoff", d.String(), "error", err)
		select {
		case <-j.ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// provision applies the domain's spec unless the guest's agent says, in its
// facts, that this spec is applied: the guest is the source of truth, so a
// restarted, reinstalled or second controller, or the same one after the
// guest moved to another host, never provisions twice.
func (c *Controller) provision(j *job) error {
	ctx, uuid := j.ctx, j.ch.GetDomainUuid()
	dom, err := j.client.GetDomain(ctx, xenchan.DomainName(uuid))
	if err != nil {
		return err
	}
	spec, path, err := LoadSpec(c.SpecDir, uuid, dom.GetDisplayName())
	if err != nil {
		return fmt.Errorf("%w: spec: %v", errPermanent, err)
	}
	if spec == nil {
		j.log.Info("no spec; leaving the guest alone", "domain", uuid, "name", dom.GetDisplayName())
		return nil
	}
	digest := spec.Digest()
	agent := &agentConn{client: j.client, channel: j.ch.GetName(), timeout: c.CallTimeout}
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
		j.log.Warn("the guest reported an invalid provisioned record; provisioning", "domain", uuid)
	}
	if applied != nil && applied.SpecID == digest {
		j.log.Info("already provisioned", "domain", uuid, "digest", digest, "at", applied.At)
		return nil
	}
	start := time.Now()
	written, err := agent.provision(ctx, spec, digest)
	if err != nil {
		return err
	}
	j.log.Info("provisioned", "domain", uuid, "name", dom.GetDisplayName(), "spec", path, "digest", digest,
		"written", written, "ms", time.Since(start).Milliseconds())
	return nil
}
