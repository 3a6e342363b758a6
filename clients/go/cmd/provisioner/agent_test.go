// Unit tests of the controller's side of the agent protocol: reply matching
// (echoes, other ids, oversize lines) and hostile hello, facts and records
// from a guest.

package main

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchReplyTakesOnlyTheAgentsReplyToTheID(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`{"ok":true,"op":"hello","id":"r1"}`, true},
		{`{"ok":false,"error":{"code":"X","message":"m"},"id":"r1"}`, true},
		{`{"op":"hello","id":"r1"}`, false},           // the echo of the request
		{`{"ok":true,"op":"hello","id":"r2"}`, false}, // a late reply to another
		{`{"ok":true,"op":"hello","id":["r1"]}`, false},
		{`{"ok":true,"op":"hello"}`, false},
		{`not json`, false},
		{`{"ok":true,"id":"r1","pad":"` + strings.Repeat("x", maxReplyBytes) + `"}`, false},
	} {
		if _, got := matchReply([]byte(tc.line), "r1"); got != tc.want {
			t.Errorf("matchReply(%.60q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestParseHelloRequiresSpecIDs(t *testing.T) {
	if p, err := parseHello([]byte(`{"ok":true,"op":"hello","protocol":2}`)); err != nil || p != 2 {
		t.Errorf("protocol 2: %d, %v", p, err)
	}
	if _, err := parseHello([]byte(`{"ok":true,"op":"hello","protocol":1}`)); !errors.Is(err, errAgentTooOld) {
		t.Errorf("protocol 1: %v, want errAgentTooOld", err)
	}
	for _, bad := range []string{`{"ok":true,"op":"pong","protocol":2}`, `{"ok":true,"op":"hello","protocol":"2"}`, `[]`} {
		if _, err := parseHello([]byte(bad)); err == nil || errors.Is(err, errAgentTooOld) {
			t.Errorf("parseHello(%s) = %v, want a malformed-reply error", bad, err)
		}
	}
}

func TestParseFactsTreatsTheGuestAsUntrusted(t *testing.T) {
	a, invalid, err := parseFacts([]byte(`{"ok":true,"op":"facts","provisioned":{"spec_id":"0123abcd","at":"2024-05-01T12:00:00Z"}}`))
	if err != nil || invalid || a == nil || a.SpecID != "0123abcd" || a.At != "2024-05-01T12:00:00Z" {
		t.Fatalf("valid record: %+v %v %v", a, invalid, err)
	}
	for _, none := range []string{`{"ok":true,"op":"facts"}`, `{"ok":true,"op":"facts","provisioned":null}`} {
		if a, invalid, err := parseFacts([]byte(none)); a != nil || invalid || err != nil {
			t.Errorf("%s: %+v %v %v, want no record", none, a, invalid, err)
		}
	}
	for _, hostile := range []string{
		`{"spec_id":"a b","at":"2024-05-01T12:00:00Z"}`,
		`{"spec_id":"","at":"2024-05-01T12:00:00Z"}`,
		`{"spec_id":"` + strings.Repeat("x", 129) + `","at":"2024-05-01T12:00:00Z"}`,
		`{"spec_id":"caf\u00e9","at":"2024-05-01T12:00:00Z"}`,
		`{"spec_id":"a\u0000","at":"2024-05-01T12:00:00Z"}`,
		`{"spec_id":"ok","at":"2024-05-01T12:00:00Z; rm -rf /"}`,
		`{"spec_id":"ok","at":12}`,
		`{"spec_id":7,"at":"2024-05-01T12:00:00Z"}`,
		`"0123abcd"`,
		`[1]`,
	} {
		a, invalid, err := parseFacts([]byte(`{"ok":true,"op":"facts","provisioned":` + hostile + `}`))
		if a != nil || !invalid || err != nil {
			t.Errorf("provisioned %s: %+v %v %v, want an invalid record", hostile, a, invalid, err)
		}
	}
	if _, _, err := parseFacts([]byte(`{"ok":true,"op":"pong"}`)); err == nil {
		t.Error("a pong taken for facts")
	}
}

func TestSpecRequestCarriesTheDigestAndIsBounded(t *testing.T) {
	s := &Spec{Hostname: "h"}
	b, err := s.Request("r1", s.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"op":"provision","id":"r1","spec_id":"` + s.Digest() + `","hostname":"h"}`; string(b) != want {
		t.Errorf("request %s, want %s", b, want)
	}
	if !specIDPattern.MatchString(s.Digest()) || len(s.Digest()) != 32 {
		t.Errorf("digest %q is not a 32-hex-digit spec_id", s.Digest())
	}
	if (&Spec{Hostname: "h2"}).Digest() == s.Digest() {
		t.Error("two specs, one digest")
	}
	big := &Spec{Files: []SpecFile{{Path: "/big", Content: strings.Repeat("A", maxRequestBytes)}}}
	if _, err := big.Request("r2", big.Digest()); err == nil {
		t.Error("a request larger than a Call can carry was accepted")
	}
}
