// Package xenchan is the Go client of xenchand, the dom0 gRPC control plane
// for Xen PV channels (the xenchan.v1 API in proto/xenchan/v1).
//
// Connect with Dial (TCP with mutual TLS) or DialUnix (xenchand's local Unix
// socket, where callers are known by uid), then use the Client:
//
//	c, err := xenchan.DialUnix(ctx, "/run/xenchan/xenchand.sock")
//	if err != nil { ... }
//	defer c.Close()
//	resp, err := c.Call(ctx, xenchan.ChannelName("vm1", "org.xenchan.agent.0"), []byte(`{"op":"ping"}`))
//
// Every method takes a context.Context: its deadline bounds the call (the
// server sees it as the gRPC deadline) and cancelling it ends streams.
//
// Streams are iterators in the google-cloud-go style: Next returns the next
// item, or Done at the end. Read and Watch reconnect by themselves after a
// transient failure (UNAVAILABLE: xenchand restarting, the connection
// dropping) and resume from the last position or revision they returned, so
// a caller sees one uninterrupted stream. Attach returns a Session, an
// io.ReadWriteCloser over the channel with write acknowledgements and epoch
// events on the side.
//
// Errors from the server are *Error values carrying the gRPC code, the stable
// reason (LEASE_HELD, NOT_CONNECTED, ...) and the typed details of
// proto/xenchan/v1/errors.proto:
//
//	var xerr *xenchan.Error
//	if errors.As(err, &xerr) && xerr.Reason == xenchanpb.ErrorReason_ERROR_REASON_LEASE_HELD {
//		holder := xerr.LeaseHolder()
//		...
//	}
//
// Idempotent unary calls (ListDomains, GetDomain, ListChannels, GetChannel,
// UpdateChannel) are retried on UNAVAILABLE with exponential backoff
// (RetryPolicy); calls with effects that must not happen twice (CreateChannel,
// DeleteChannel, Call, Write, Attach) are not.
//
// A Client is safe for concurrent use by several goroutines. Iterators,
// Writers and Sessions are used by one goroutine at a time, except where a
// method says otherwise.
package xenchan
