// Unit tests of the error conversion: statuses built as xenchand builds them
// (ErrorInfo, typed details, RetryInfo) become *Error with every field.

package xenchan

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"xenchan.dev/go/xenchanpb"
)

func statusWith(t *testing.T, code codes.Code, reason string, details ...interface{}) error {
	t.Helper()
	s := status.New(code, "it failed")
	var msgs []interface{}
	if reason != "" {
		msgs = append(msgs, &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: reason, Metadata: map[string]string{"channel": "domains/u/channels/c"}})
	}
	msgs = append(msgs, details...)
	for _, d := range msgs {
		var err error
		switch m := d.(type) {
		case *errdetails.ErrorInfo:
			s, err = s.WithDetails(m)
		case *errdetails.RetryInfo:
			s, err = s.WithDetails(m)
		case *xenchanpb.LeaseHolder:
			s, err = s.WithDetails(m)
		case *xenchanpb.RetainedRange:
			s, err = s.WithDetails(m)
		default:
			t.Fatalf("unexpected detail %T", d)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return s.Err()
}

func TestErrorFromStatusHasReasonMetadataAndDetails(t *testing.T) {
	holder := &xenchanpb.LeaseHolder{SessionId: "s1", Identity: "unix:uid=0"}
	err := wrapError(statusWith(t, codes.FailedPrecondition, "LEASE_HELD", holder))
	wrapped := fmt.Errorf("provisioning: %w", err)
	var xerr *Error
	if !errors.As(wrapped, &xerr) {
		t.Fatalf("errors.As failed on %v", wrapped)
	}
	if xerr.Code != codes.FailedPrecondition || xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_LEASE_HELD ||
		xerr.ReasonName != "LEASE_HELD" || xerr.Metadata["channel"] != "domains/u/channels/c" {
		t.Errorf("got %+v", xerr)
	}
	if xerr.LeaseHolder().GetSessionId() != "s1" || xerr.RetainedRange() != nil || xerr.Channel() != nil {
		t.Errorf("details: %v", xerr.Details)
	}
	if ReasonOf(wrapped) != xenchanpb.ErrorReason_ERROR_REASON_LEASE_HELD || CodeOf(wrapped) != codes.FailedPrecondition {
		t.Error("ReasonOf/CodeOf")
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Error("status.Code does not see through *Error")
	}
	if got := xerr.Error(); got != "xenchan: FailedPrecondition LEASE_HELD: it failed" {
		t.Errorf("Error() = %q", got)
	}
}

func TestErrorWithUnknownReasonKeepsItsName(t *testing.T) {
	xerr := wrapError(statusWith(t, codes.Unavailable, "SOMETHING_NEW")).(*Error)
	if xerr.Reason != xenchanpb.ErrorReason_ERROR_REASON_UNSPECIFIED || xerr.ReasonName != "SOMETHING_NEW" || !xerr.Temporary() {
		t.Errorf("got %+v", xerr)
	}
}

func TestErrorWithoutErrorInfo(t *testing.T) {
	xerr := wrapError(status.Error(codes.Canceled, "gone")).(*Error)
	if xerr.ReasonName != "" || !errors.Is(xerr, context.Canceled) || errors.Is(xerr, context.DeadlineExceeded) {
		t.Errorf("got %+v", xerr)
	}
	if wrapError(nil) != nil {
		t.Error("nil became an error")
	}
	plain := errors.New("plain")
	if wrapError(plain) != plain {
		t.Error("a non-gRPC error was changed")
	}
	if CodeOf(context.DeadlineExceeded) != codes.DeadlineExceeded {
		t.Error("CodeOf(context.DeadlineExceeded)")
	}
}

func TestRetryInfoDelay(t *testing.T) {
	xerr := wrapError(statusWith(t, codes.Unavailable, "SHUTTING_DOWN",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})).(*Error)
	if d, ok := xerr.RetryDelay(); !ok || d != 1500*time.Millisecond {
		t.Errorf("RetryDelay = %v, %v", d, ok)
	}
}

func TestRejectionError(t *testing.T) {
	e := rejectionError(&xenchanpb.WriteRejection{FirstSequenceId: 3, LastSequenceId: 4, Code: int32(codes.Aborted),
		Reason: xenchanpb.ErrorReason_ERROR_REASON_EPOCH_CHANGED, Message: "epoch"})
	if e.Code != codes.Aborted || e.ReasonName != "EPOCH_CHANGED" || e.GRPCStatus().Code() != codes.Aborted {
		t.Errorf("got %+v", e)
	}
}
