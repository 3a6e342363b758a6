// Unit tests of what the hosts of a fleet share: the in-flight set (one job
// per domain at once, whichever host reports it; the newest report is the
// one looked at next; a host that left is dropped) and host-tagged logs.

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"xenchan.dev/go/xenchanpb"
)

func TestInflightIsSharedAcrossHostsAndKeepsTheNewestJob(t *testing.T) {
	// No workers: the queue is a pool whose every worker is busy.
	c := &Controller{inflight: map[string]bool{}, again: map[string]*job{}, jobs: make(chan *job)}
	ctxA, leaveA := context.WithCancel(context.Background())
	ctxB, leaveB := context.WithCancel(context.Background())
	defer leaveB()
	ch := &xenchanpb.Channel{DomainUuid: "u1", Name: "domains/u1/channels/org.xenchan.agent.0"}
	onA1 := &job{ctx: ctxA, ch: ch}
	onA2 := &job{ctx: ctxA, ch: ch}
	onB := &job{ctx: ctxB, ch: ch}
	if !c.claim(onA1) {
		t.Fatal("the first claim failed")
	}
	if c.claim(onA2) || c.claim(onB) {
		t.Fatal("a domain in flight was claimed again (from another host)")
	}
	if got := c.next("u1"); got != onB {
		t.Fatalf("next = %v, want the newest report (host B's)", got)
	}
	if c.claim(onA1) {
		t.Fatal("claimed while B's job runs")
	}
	leaveA() // host A left: its report is dropped and the domain released
	if got := c.next("u1"); got != nil {
		t.Fatalf("next = %v after A left, want nil", got)
	}
	if !c.claim(onB) {
		t.Fatal("the domain stayed in flight after its last job")
	}
	if got := c.next("u1"); got != nil {
		t.Fatalf("next = %v, want nil", got)
	}
	// A host loop whose context ended does not block on a busy pool.
	if c.submit(onA1) {
		t.Fatal("submit from a host that left succeeded")
	}
}

func TestWithLoggerNamesTheHostOnEveryLine(t *testing.T) {
	var out bytes.Buffer
	root := &Logger{w: &out}
	root.With("host", "host-a").With("x", "y").Info("provisioned", "domain", "u1")
	root.With("host", "evil\nlevel=error").Warn("m")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], `msg="provisioned" host=host-a x=y domain=u1`) ||
		!strings.HasSuffix(lines[1], `msg="m" host="evil\nlevel=error"`) {
		t.Errorf("log:\n%s", out.String())
	}
}
