// Unit tests of the fleet client's decisions, without processes: the TLS
// name a host is dialled with, the records that end the wait for an owner,
// and what a following read delivers for a move. The end-to-end behaviour
// is fleet_e2e_test.go's.

package xenchan

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"xenchan.dev/go/xenchanpb"
)

func TestHostOptionsCheckTheAdvertisedIdentity(t *testing.T) {
	base := &tls.Config{ServerName: "entry.example", MinVersion: tls.VersionTLS12}
	opts := []Option{WithTLSConfig(base)}
	o, err := applyOptions(hostOptions(opts, &xenchanpb.Host{ApiAddress: "10.0.0.2:7443", Identity: "h2.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.tlsConfig.ServerName != "h2.example" || o.tlsConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config for the host: %+v", o.tlsConfig)
	}
	if base.ServerName != "entry.example" {
		t.Errorf("the fleet's own config changed: %q", base.ServerName)
	}
	o, err = applyOptions(hostOptions(opts, &xenchanpb.Host{ApiAddress: "10.0.0.2:7443"}))
	if err != nil || o.tlsConfig.ServerName != "entry.example" {
		t.Errorf("a host without identity: %+v, %v", o.tlsConfig, err)
	}
	o, err = applyOptions(hostOptions([]Option{WithInsecure()}, &xenchanpb.Host{Identity: "h2.example"}))
	if err != nil || o.tlsConfig != nil || !o.insecure {
		t.Errorf("plaintext options gained TLS: %+v, %v", o, err)
	}
}

func TestDialHostNeedsAnAddress(t *testing.T) {
	f := &Fleet{}
	if _, err := f.DialHost(context.Background(), &xenchanpb.Host{HostId: "h2"}); err == nil {
		t.Error("DialHost without an address succeeded")
	}
}

func rec(host string, domid uint32) *xenchanpb.FleetDomain {
	return &xenchanpb.FleetDomain{Host: host, Domid: domid}
}

func TestTriggers(t *testing.T) {
	migrated := &trigger{kind: triggerMigrated}
	if migrated.satisfiedBy(rec("hosts/a", 3), "hosts/a", 3) || !migrated.satisfiedBy(rec("hosts/a", 4), "hosts/a", 3) ||
		!migrated.satisfiedBy(rec("hosts/b", 3), "hosts/a", 3) {
		t.Error("migrated: another host or another domid")
	}
	if !(&trigger{kind: triggerUnavailable}).satisfiedBy(rec("hosts/a", 3), "hosts/a", 3) {
		t.Error("unavailable: any record")
	}
	notFound := &trigger{kind: triggerNotFound}
	if notFound.satisfiedBy(rec("hosts/a", 9), "hosts/a", 3) || !notFound.satisfiedBy(rec("hosts/b", 3), "hosts/a", 3) {
		t.Error("not found: another host")
	}
	errOf := func(c codes.Code) error { return FromStatus(status.New(c, "x")) }
	if classify(errOf(codes.Unavailable)).kind != triggerUnavailable || classify(errOf(codes.NotFound)).kind != triggerNotFound {
		t.Error("classify")
	}
	for _, c := range []codes.Code{codes.PermissionDenied, codes.OutOfRange, codes.InvalidArgument} {
		if classify(errOf(c)) != nil {
			t.Errorf("%v is the caller's", c)
		}
	}
}

func TestOwnerWait(t *testing.T) {
	w := newOwnerWait("u", time.Hour)
	var got []time.Duration
	for i := 0; i < 6; i++ {
		p, _ := w.nextPause()
		got = append(got, p)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("pauses %v", got)
		}
	}
	w.last = rec("hosts/a", 3)
	var xerr *Error
	if err := w.timeoutError(nil); !errors.As(err, &xerr) || xerr.Code != codes.DeadlineExceeded {
		t.Errorf("timeout error %v", err)
	}
	if _, ok := newOwnerWait("u", 0).nextPause(); ok {
		t.Error("an expired wait pauses")
	}
}

func dataMsg(epoch, offset uint64, b string) *xenchanpb.ReadResponse {
	return &xenchanpb.ReadResponse{Event: &xenchanpb.ReadResponse_Data{Data: &xenchanpb.DataChunk{Epoch: epoch, Offset: offset, Data: []byte(b)}}}
}

func ecMsg(prev, epoch uint64) *xenchanpb.ReadResponse {
	return &xenchanpb.ReadResponse{Event: &xenchanpb.ReadResponse_EpochChange{EpochChange: &xenchanpb.EpochChange{PreviousEpoch: prev, Epoch: epoch}}}
}

func TestMoveSplice(t *testing.T) {
	source := &xenchanpb.EpochChange{PreviousEpoch: 5, Epoch: 6, PreviousEndOffset: 40, Reason: reasonMigrated}
	out := newMoveSplice(source, &xenchanpb.Position{Epoch: 5, Offset: 40}).first(dataMsg(9, 0, "x"))
	if len(out) != 2 || !proto.Equal(out[1], dataMsg(9, 0, "x")) {
		t.Fatalf("data at 0: %v", out)
	}
	if ec := out[0].GetEpochChange(); ec.GetPreviousEpoch() != 5 || ec.GetPreviousEndOffset() != 40 || ec.GetEpoch() != 9 || ec.GetReason() != reasonMigrated {
		t.Errorf("change %v", ec)
	}
	out = newMoveSplice(nil, &xenchanpb.Position{Epoch: 5, Offset: 12}).first(dataMsg(9, 7, "x"))
	if len(out) != 3 || !proto.Equal(out[1].GetGap(), &xenchanpb.Gap{Epoch: 9, Offset: 0, Length: 7}) {
		t.Fatalf("a loss must show as a gap: %v", out)
	}
	if ec := out[0].GetEpochChange(); ec.GetPreviousEpoch() != 5 || ec.GetPreviousEndOffset() != 12 {
		t.Errorf("change from the position: %v", ec)
	}
	out = newMoveSplice(nil, &xenchanpb.Position{Epoch: 5, Offset: 12}).first(ecMsg(0, 9))
	if len(out) != 1 || out[0].GetEpochChange().GetEpoch() != 9 || out[0].GetEpochChange().GetReason() != reasonMigrated {
		t.Errorf("the first connection there is folded: %v", out)
	}
	out = newMoveSplice(source, nil).first(ecMsg(9, 10))
	if len(out) != 2 || out[0].GetEpochChange().GetEpoch() != 9 || out[1].GetEpochChange().GetEpoch() != 10 {
		t.Errorf("a later epoch there follows the move: %v", out)
	}
}
