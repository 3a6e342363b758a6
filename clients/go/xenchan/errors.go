// Typed errors: the server's google.rpc.Status as an *Error with the gRPC
// code, the stable xenchan reason and the decoded details.

package xenchan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"xenchan.dev/go/xenchanpb"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every xenchan error.
const ErrorDomain = "xenchan.dev"

// Error is an error returned by xenchand (or by gRPC on the way to it), with
// what errors.proto promises every xenchan error carries. Get it with
// errors.As:
//
//	var xerr *xenchan.Error
//	if errors.As(err, &xerr) { switch xerr.Reason { ... } }
//
// Each reason always comes with the same code, so callers may switch on
// Reason alone; errors produced by gRPC itself (a cancelled call, an
// unreachable server) have Reason ERROR_REASON_UNSPECIFIED and are told
// apart by Code.
type Error struct {
	// Code is the gRPC status code, chosen by what the caller should do next
	// (see proto/xenchan/v1/channel_service.proto).
	Code codes.Code
	// Reason is the stable reason from ErrorInfo; ERROR_REASON_UNSPECIFIED if
	// the error carries none, or one newer than this SDK (see ReasonName).
	Reason xenchanpb.ErrorReason
	// ReasonName is ErrorInfo's reason as sent ("LEASE_HELD"), also for
	// reasons this SDK does not know yet; empty without ErrorInfo.
	ReasonName string
	// Message is the server's human-readable message (English, not stable).
	Message string
	// Metadata is ErrorInfo's metadata: "domain", "channel", "session_id",
	// "verb", "limit" where they apply.
	Metadata map[string]string
	// Details holds every decoded detail message of the status, in order:
	// xenchanpb messages (Channel, LeaseHolder, WriteProgress, RetainedRange,
	// ...) and google.rpc ones (*errdetails.ErrorInfo, BadRequest,
	// RetryInfo). The typed accessors below pick from it.
	Details []interface{}

	status *status.Status
}

// Error formats the error as "xenchan: CODE REASON: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("xenchan: ")
	b.WriteString(e.Code.String())
	if e.ReasonName != "" {
		b.WriteString(" ")
		b.WriteString(e.ReasonName)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// GRPCStatus returns the underlying gRPC status, so status.FromError and
// status.Code work on an *Error too.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is reports whether the error is a cancellation (context.Canceled) or a
// deadline (context.DeadlineExceeded), so errors.Is works as with the
// context's own errors.
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	return false
}

// Temporary reports whether retrying later may succeed: UNAVAILABLE
// (xenchand restarting, domain gone for now, a dependency down).
func (e *Error) Temporary() bool { return e.Code == codes.Unavailable }

// Channel returns the xenchanpb.Channel detail (NOT_CONNECTED,
// CHANNEL_EXISTS, TOOLSTACK_MANAGED, ...), or nil.
func (e *Error) Channel() *xenchanpb.Channel { return detail[*xenchanpb.Channel](e) }

// LeaseHolder returns the LeaseHolder detail (LEASE_HELD,
// LEASE_WAIT_TIMEOUT, LEASE_TAKEN_OVER), or nil.
func (e *Error) LeaseHolder() *xenchanpb.LeaseHolder { return detail[*xenchanpb.LeaseHolder](e) }

// WriteProgress returns the WriteProgress detail of a failed Write, or nil.
func (e *Error) WriteProgress() *xenchanpb.WriteProgress {
	return detail[*xenchanpb.WriteProgress](e)
}

// PartialResponse returns the PartialResponse detail of a Call that failed
// after its request was written, or nil.
func (e *Error) PartialResponse() *xenchanpb.PartialResponse {
	return detail[*xenchanpb.PartialResponse](e)
}

// RetainedRange returns the RetainedRange detail of OFFSET_NOT_RETAINED, or
// nil.
func (e *Error) RetainedRange() *xenchanpb.RetainedRange {
	return detail[*xenchanpb.RetainedRange](e)
}

// RetainedRevisions returns the RetainedRevisions detail of
// REVISION_NOT_RETAINED, or nil.
func (e *Error) RetainedRevisions() *xenchanpb.RetainedRevisions {
	return detail[*xenchanpb.RetainedRevisions](e)
}

// EpochMismatch returns the EpochMismatch detail of EPOCH_CHANGED, or nil.
func (e *Error) EpochMismatch() *xenchanpb.EpochMismatch {
	return detail[*xenchanpb.EpochMismatch](e)
}

// LimitExceeded returns the LimitExceeded detail of a RESOURCE_EXHAUSTED
// error, or nil.
func (e *Error) LimitExceeded() *xenchanpb.LimitExceeded {
	return detail[*xenchanpb.LimitExceeded](e)
}

// BadRequest returns the google.rpc.BadRequest detail of an
// INVALID_ARGUMENT error (the offending fields), or nil.
func (e *Error) BadRequest() *errdetails.BadRequest { return detail[*errdetails.BadRequest](e) }

// RetryDelay returns the delay the server suggests in a google.rpc.RetryInfo
// detail, and whether there was one.
func (e *Error) RetryDelay() (time.Duration, bool) {
	info := detail[*errdetails.RetryInfo](e)
	if info == nil || info.GetRetryDelay() == nil {
		return 0, false
	}
	d := info.GetRetryDelay()
	return time.Duration(d.GetSeconds())*time.Second + time.Duration(d.GetNanos()), true
}

func detail[T any](e *Error) T {
	for _, d := range e.Details {
		if t, ok := d.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}

// ReasonOf returns the xenchan reason of err (ERROR_REASON_UNSPECIFIED if err
// is nil or carries none).
func ReasonOf(err error) xenchanpb.ErrorReason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return xenchanpb.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// CodeOf returns the gRPC code of err: OK for nil, Unknown for an error that
// is not a gRPC or xenchan error.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(wrapError(err), &e) {
		return e.Code
	}
	return codes.Unknown
}

// FromStatus converts a gRPC status to an *Error, decoding its ErrorInfo and
// details; nil for an OK status.
func FromStatus(s *status.Status) *Error {
	if s == nil || s.Code() == codes.OK {
		return nil
	}
	e := &Error{Code: s.Code(), Message: s.Message(), status: s}
	for _, d := range s.Details() {
		if _, isErr := d.(error); isErr {
			continue // a detail type this program does not link: skipped
		}
		e.Details = append(e.Details, d)
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain && e.ReasonName == "" {
			e.ReasonName = info.GetReason()
			e.Metadata = info.GetMetadata()
			if v, known := xenchanpb.ErrorReason_value["ERROR_REASON_"+info.GetReason()]; known {
				e.Reason = xenchanpb.ErrorReason(v)
			}
		}
	}
	return e
}

// wrapError turns an error from the generated stub into an *Error; nil stays
// nil and errors that are not gRPC statuses pass through.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if s, ok := status.FromError(err); ok {
		return FromStatus(s)
	}
	if errors.Is(err, context.Canceled) {
		return FromStatus(status.New(codes.Canceled, err.Error()))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return FromStatus(status.New(codes.DeadlineExceeded, err.Error()))
	}
	return err
}

// rejectionError is the *Error of an Attach WriteRejection.
func rejectionError(r *xenchanpb.WriteRejection) *Error {
	reason := strings.TrimPrefix(r.GetReason().String(), "ERROR_REASON_")
	s := status.New(codes.Code(r.GetCode()), fmt.Sprintf("writes %d..%d rejected: %s",
		r.GetFirstSequenceId(), r.GetLastSequenceId(), r.GetMessage()))
	return &Error{
		Code:       codes.Code(r.GetCode()),
		Reason:     r.GetReason(),
		ReasonName: reason,
		Message:    s.Message(),
		Details:    []interface{}{r},
		status:     s,
	}
}
