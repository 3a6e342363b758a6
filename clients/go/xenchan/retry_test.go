// Unit tests of the retry policy and the list iterator.

package xenchan

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2, MaxAttempts: 5}
	for retry, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
		got := p.Backoff(retry)
		if got > want || got < want*8/10 {
			t.Errorf("Backoff(%d) = %v, want %v minus at most 20%%", retry, got, want)
		}
	}
}

func TestDoRetriesOnlyUnavailable(t *testing.T) {
	p := RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Multiplier: 1, MaxAttempts: 3}
	calls := 0
	err := p.do(context.Background(), func() error { calls++; return status.Error(codes.Unavailable, "down") })
	if calls != 3 || CodeOf(err) != codes.Unavailable {
		t.Errorf("unavailable: %d calls, %v", calls, err)
	}
	calls = 0
	err = p.do(context.Background(), func() error { calls++; return status.Error(codes.NotFound, "no") })
	if calls != 1 || CodeOf(err) != codes.NotFound {
		t.Errorf("not found: %d calls, %v", calls, err)
	}
	calls = 0
	err = p.do(context.Background(), func() error {
		calls++
		if calls < 2 {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	})
	if calls != 2 || err != nil {
		t.Errorf("recovering: %d calls, %v", calls, err)
	}
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	p := RetryPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour, Multiplier: 1, MaxAttempts: -1}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.do(ctx, func() error { return status.Error(codes.Unavailable, "down") })
	if CodeOf(err) != codes.Unavailable {
		t.Errorf("got %v, want the last call's error", err)
	}
}

func TestIteratorPages(t *testing.T) {
	pages := map[string][]int{"": {1, 2}, "p2": {}, "p3": {3}}
	next := map[string]string{"": "p2", "p2": "p3", "p3": ""}
	it := &Iterator[int]{fetch: func(tok string) ([]int, string, error) { return pages[tok], next[tok], nil }}
	got, err := it.All()
	if err != nil || len(got) != 3 || got[2] != 3 {
		t.Errorf("All = %v, %v", got, err)
	}
	if _, err := it.Next(); err != Done {
		t.Errorf("after the end: %v", err)
	}
	boom := errors.New("boom")
	it = &Iterator[int]{fetch: func(string) ([]int, string, error) { return nil, "", boom }}
	if _, err := it.Next(); err != boom {
		t.Errorf("error: %v", err)
	}
}
