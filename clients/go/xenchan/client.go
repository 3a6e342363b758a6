// Client: connecting to xenchand (Dial, DialUnix) and the unary methods.

package xenchan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"xenchan.dev/go/xenchanpb"
)

// Client talks to one xenchand. It is safe for concurrent use; Close it when
// done.
type Client struct {
	conn  *grpc.ClientConn
	rpc   xenchanpb.ChannelServiceClient
	retry RetryPolicy
}

// Option configures Dial and DialUnix.
type Option func(*options) error

type options struct {
	tlsConfig *tls.Config
	insecure  bool
	retry     RetryPolicy
	grpcOpts  []grpc.DialOption
}

// WithTLSConfig sets the TLS configuration of a TCP connection (mutual TLS:
// the config should hold the client certificate and the CA of xenchand's
// certificate).
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) error { o.tlsConfig = c; return nil }
}

// WithTLSFiles sets up mutual TLS from PEM files: caFile, the CA that signed
// xenchand's certificate, and certFile/keyFile, this client's certificate
// and key. serverName, if not empty, is checked against the server
// certificate instead of the target's host (e.g. a DNS SAN when dialling an
// IP address).
func WithTLSFiles(caFile, certFile, keyFile, serverName string) Option {
	return func(o *options) error {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("xenchan: reading CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("xenchan: no certificate in %s", caFile)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("xenchan: client certificate: %w", err)
		}
		o.tlsConfig = &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
			ServerName:   serverName,
			MinVersion:   tls.VersionTLS12,
		}
		return nil
	}
}

// WithInsecure allows a plaintext TCP connection: only for xenchand's
// `insecure-tcp://127.0.0.1:PORT` listener (loopback, unauthenticated).
func WithInsecure() Option {
	return func(o *options) error { o.insecure = true; return nil }
}

// WithRetryPolicy replaces DefaultRetryPolicy for this client.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) error { o.retry = p; return nil }
}

// WithGRPCDialOptions adds options to the underlying grpc.DialContext call
// (interceptors, a custom dialer, ...).
func WithGRPCDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) error { o.grpcOpts = append(o.grpcOpts, opts...); return nil }
}

// Dial connects to xenchand at target: "host:port" for a TCP listener (mutual
// TLS with WithTLSFiles or WithTLSConfig; plaintext only with WithInsecure),
// or "unix:///path" for the Unix socket. The connection is made lazily: an
// unreachable server shows as UNAVAILABLE on the first call. ctx bounds
// setting up the connection only.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if path := strings.TrimPrefix(target, "unix://"); path != target {
		return DialUnix(ctx, path, opts...)
	}
	if target == "" {
		return nil, errors.New("xenchan: empty target")
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case o.tlsConfig != nil:
		o.grpcOpts = append(o.grpcOpts, grpc.WithTransportCredentials(credentials.NewTLS(o.tlsConfig)))
	case o.insecure:
		o.grpcOpts = append(o.grpcOpts, grpc.WithInsecure())
	default:
		return nil, fmt.Errorf("xenchan: %s is a TCP target: use WithTLSFiles (mutual TLS) or WithInsecure", target)
	}
	return dial(ctx, target, o)
}

// DialUnix connects to xenchand's Unix socket at path (xenchand knows the
// caller by its uid and gid). TLS options are not used.
func DialUnix(ctx context.Context, path string, opts ...Option) (*Client, error) {
	if path == "" {
		return nil, errors.New("xenchan: empty socket path")
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	o.grpcOpts = append(o.grpcOpts, grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}))
	// The authority is what the server sees as :authority; the path itself
	// is not a valid one.
	return dial(ctx, "passthrough:///localhost", o)
}

// NewClient wraps an existing connection (for example one with interceptors
// of your own). Close closes conn.
func NewClient(conn *grpc.ClientConn, opts ...Option) (*Client, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, rpc: xenchanpb.NewChannelServiceClient(conn), retry: o.retry}, nil
}

func applyOptions(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func dial(ctx context.Context, target string, o *options) (*Client, error) {
	base := []grpc.DialOption{
		// xenchand permits client keepalive pings at 30 s and more.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second}),
		// Call responses reach 1 MiB plus framing.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4 << 20)),
	}
	conn, err := grpc.DialContext(ctx, target, append(base, o.grpcOpts...)...)
	if err != nil {
		return nil, wrapError(err)
	}
	return &Client{conn: conn, rpc: xenchanpb.NewChannelServiceClient(conn), retry: o.retry}, nil
}

// Close closes the connection; streams still open end with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// Raw returns the generated stub, for what this package does not wrap.
func (c *Client) Raw() xenchanpb.ChannelServiceClient { return c.rpc }

// GetDomain returns one domain by resource name ("domains/{uuid or name}";
// DomainName builds one). Retried on UNAVAILABLE.
// Errors: INVALID_NAME, DOMAIN_NOT_FOUND.
func (c *Client) GetDomain(ctx context.Context, name string) (*xenchanpb.Domain, error) {
	var out *xenchanpb.Domain
	err := c.retry.do(ctx, func() error {
		r, err := c.rpc.GetDomain(ctx, &xenchanpb.GetDomainRequest{Name: name})
		out = r.GetDomain()
		return err
	})
	return out, err
}

// GetChannel returns one channel with its state and counters, by resource
// name (ChannelName builds one). Retried on UNAVAILABLE.
// Errors: INVALID_NAME, DOMAIN_NOT_FOUND, CHANNEL_NOT_FOUND.
func (c *Client) GetChannel(ctx context.Context, name string) (*xenchanpb.Channel, error) {
	var out *xenchanpb.Channel
	err := c.retry.do(ctx, func() error {
		r, err := c.rpc.GetChannel(ctx, &xenchanpb.GetChannelRequest{Name: name})
		out = r.GetChannel()
		return err
	})
	return out, err
}

// CreateChannel hot-adds a RING channel (see the proto for every field).
// Not retried: a retry after a lost answer could meet CHANNEL_EXISTS.
// Errors: INVALID_NAME, INVALID_CHANNEL_ID, INVALID_OPTION, DOMAIN_NOT_FOUND,
// CHANNEL_EXISTS, NO_FREE_DEVID, QUOTA_EXCEEDED, MEMORY_BUDGET_EXHAUSTED,
// GUEST_TIMEOUT, NOT_CONNECTED, DOMAIN_GONE.
func (c *Client) CreateChannel(ctx context.Context, req *xenchanpb.CreateChannelRequest) (*xenchanpb.Channel, error) {
	r, err := c.rpc.CreateChannel(ctx, req)
	return r.GetChannel(), wrapError(err)
}

// UpdateChannel changes the config fields of channel named by paths
// ("config.buffer_limit_bytes", ...; at least one) to their values in
// channel.Config. Retried on UNAVAILABLE (setting the same values twice is
// harmless). Errors: INVALID_NAME, INVALID_OPTION, DOMAIN_NOT_FOUND,
// CHANNEL_NOT_FOUND, TOOLSTACK_MANAGED, UPDATE_NOT_POSSIBLE.
func (c *Client) UpdateChannel(ctx context.Context, channel *xenchanpb.Channel, paths ...string) (*xenchanpb.Channel, error) {
	req := &xenchanpb.UpdateChannelRequest{Channel: channel, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
	var out *xenchanpb.Channel
	err := c.retry.do(ctx, func() error {
		r, err := c.rpc.UpdateChannel(ctx, req)
		out = r.GetChannel()
		return err
	})
	return out, err
}

// DeleteChannel unplugs and removes a RING channel (and a durable one's
// declaration). Not retried. Errors: INVALID_NAME, INVALID_OPTION,
// DOMAIN_NOT_FOUND, CHANNEL_NOT_FOUND, TOOLSTACK_MANAGED, and
// DEADLINE_EXCEEDED (the unplug then completes in the background).
func (c *Client) DeleteChannel(ctx context.Context, req *xenchanpb.DeleteChannelRequest) (*xenchanpb.DeleteChannelResponse, error) {
	r, err := c.rpc.DeleteChannel(ctx, req)
	return r, wrapError(err)
}

// CallOption changes one Call.
type CallOption func(*xenchanpb.CallRequest)

// WithFraming sets the Call's framing instead of the channel's default.
func WithFraming(f *xenchanpb.Framing) CallOption {
	return func(r *xenchanpb.CallRequest) { r.Framing = f }
}

// Call sends one request to the agent on channel and returns its response
// (framing removed). ctx's deadline bounds the whole exchange, queueing for
// the write lease included (without one the server's maximum applies). Not
// retried: the guest may have acted on the request. Errors: NOT_CONNECTED,
// LEASE_WAIT_TIMEOUT, GUEST_TIMEOUT, EPOCH_CHANGED, LEASE_TAKEN_OVER,
// RESPONSE_TOO_LARGE, PAYLOAD_TOO_LARGE, DOMAIN_GONE, ... (PartialResponse
// says what happened once the request was written).
func (c *Client) Call(ctx context.Context, channel string, request []byte, opts ...CallOption) (*xenchanpb.CallResponse, error) {
	req := &xenchanpb.CallRequest{Channel: channel, Request: request}
	for _, o := range opts {
		o(req)
	}
	r, err := c.rpc.Call(ctx, req)
	return r, wrapError(err)
}
