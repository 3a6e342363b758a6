// The retry policy: exponential backoff with jitter for UNAVAILABLE, used by
// idempotent unary calls and by the reconnects of Read and Watch.

package xenchan

import (
	"context"
	"math/rand"
	"time"

	"google.golang.org/grpc/codes"
)

// RetryPolicy says how often and how patiently to retry after UNAVAILABLE.
// The zero value means DefaultRetryPolicy; set MaxAttempts to 1 to turn
// retries off.
type RetryPolicy struct {
	// InitialBackoff is the wait before the first retry.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait (the server's RetryInfo delay is honoured up
	// to it).
	MaxBackoff time.Duration
	// Multiplier grows the wait after each failed attempt.
	Multiplier float64
	// MaxAttempts is how many attempts in a row may fail (the first
	// included) before the error is returned; for streams the count starts
	// again whenever a message arrives. Negative: no limit but the context.
	MaxAttempts int
}

// DefaultRetryPolicy waits 100 ms, then twice as long each time up to 5 s,
// for at most 10 attempts (about 20 s in all): enough to ride out a xenchand
// restart.
var DefaultRetryPolicy = RetryPolicy{
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     5 * time.Second,
	Multiplier:     2,
	MaxAttempts:    10,
}

func (p RetryPolicy) orDefault() RetryPolicy {
	if p == (RetryPolicy{}) {
		return DefaultRetryPolicy
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.Multiplier < 1 {
		p.Multiplier = 1
	}
	return p
}

// Backoff returns the wait before retry number `retry` (1 for the first
// retry): InitialBackoff * Multiplier^(retry-1), capped at MaxBackoff, with
// up to 20% random jitter taken off so that many clients do not retry in
// step.
func (p RetryPolicy) Backoff(retry int) time.Duration {
	p = p.orDefault()
	d := float64(p.InitialBackoff)
	for i := 1; i < retry && d < float64(p.MaxBackoff); i++ {
		d *= p.Multiplier
	}
	if d > float64(p.MaxBackoff) {
		d = float64(p.MaxBackoff)
	}
	return time.Duration(d * (1 - 0.2*rand.Float64()))
}

// exhausted reports whether `failures` failed attempts in a row use up the
// policy.
func (p RetryPolicy) exhausted(failures int) bool {
	p = p.orDefault()
	return p.MaxAttempts >= 0 && failures >= p.MaxAttempts
}

// isRetryable reports whether err is worth retrying: UNAVAILABLE.
func isRetryable(err error) bool { return CodeOf(err) == codes.Unavailable }

// wait sleeps before retry number `retry` of err (honouring the server's
// RetryInfo, capped at MaxBackoff), or returns the context's error.
func (p RetryPolicy) wait(ctx context.Context, retry int, err error) error {
	p = p.orDefault()
	d := p.Backoff(retry)
	if e, ok := err.(*Error); ok {
		if hint, has := e.RetryDelay(); has && hint > d {
			d = hint
			if d > p.MaxBackoff {
				d = p.MaxBackoff
			}
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return wrapError(ctx.Err())
	case <-t.C:
		return nil
	}
}

// do runs call until it succeeds, fails with an error that is not
// retryable, the policy is used up or ctx ends; it returns the last error.
func (p RetryPolicy) do(ctx context.Context, call func() error) error {
	for failures := 1; ; failures++ {
		err := wrapError(call())
		if err == nil || !isRetryable(err) || p.exhausted(failures) {
			return err
		}
		if werr := p.wait(ctx, failures, err); werr != nil {
			return err
		}
	}
}
