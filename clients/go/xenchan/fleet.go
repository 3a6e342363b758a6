// Fleet: finding hosts and domains through any xenchand of a fleet
// (xenchan.v1.FleetService, docs/FLEET.md) and dialling the host that runs a
// domain directly.

package xenchan

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"xenchan.dev/go/xenchanpb"
)

// Fleet is the fleet seen through one xenchand (any host of the fleet
// answers for all of them, from its copy of the fleet's records in etcd). It
// resolves a domain to the host that runs it and dials that host with the
// options the fleet was dialled with, checking the host's advertised
// certificate identity: resolving is the SDK's job, not the caller's. It is
// safe for concurrent use; Close it when done (Clients it returned are
// closed separately).
//
// A xenchand started without --fleet-etcd answers every call with
// FAILED_PRECONDITION FLEET_NOT_CONFIGURED; one that has not read etcd yet
// with UNAVAILABLE FLEET_UNAVAILABLE, which the RetryPolicy retries.
type Fleet struct {
	conn  *grpc.ClientConn
	rpc   xenchanpb.FleetServiceClient
	retry RetryPolicy
	opts  []Option
}

// DomainLocation is where a domain runs, as LocateDomain answered.
type DomainLocation struct {
	// Domain is the domain's record: UUID, display name, host
	// ("hosts/{id}"), domid, state, revision.
	Domain *xenchanpb.FleetDomain
	// Host is the host that runs it: dial Host.ApiAddress expecting
	// Host.Identity (Fleet.DialHost does).
	Host *xenchanpb.Host
	// Revision is the etcd revision the answer reflects; a FleetWatcher may
	// resume after it.
	Revision int64
}

// DialFleet connects to the xenchand at target (any host of the fleet),
// with the options of Dial; the same options are used for every host the
// fleet leads to.
func DialFleet(ctx context.Context, target string, opts ...Option) (*Fleet, error) {
	c, err := Dial(ctx, target, opts...)
	if err != nil {
		return nil, err
	}
	return &Fleet{conn: c.conn, rpc: xenchanpb.NewFleetServiceClient(c.conn), retry: c.retry,
		opts: append([]Option(nil), opts...)}, nil
}

// Close closes the connection to the fleet's xenchand; streams still open
// end with CANCELED.
func (f *Fleet) Close() error { return f.conn.Close() }

// Raw returns the generated FleetService stub.
func (f *Fleet) Raw() xenchanpb.FleetServiceClient { return f.rpc }

// ListHosts lists the registered hosts in host id order. Each page is
// retried on UNAVAILABLE.
func (f *Fleet) ListHosts(ctx context.Context) *Iterator[*xenchanpb.Host] {
	return &Iterator[*xenchanpb.Host]{fetch: func(token string) ([]*xenchanpb.Host, string, error) {
		var r *xenchanpb.ListHostsResponse
		err := f.retry.do(ctx, func() (err error) {
			r, err = f.rpc.ListHosts(ctx, &xenchanpb.ListHostsRequest{PageToken: token})
			return err
		})
		return r.GetHosts(), r.GetNextPageToken(), err
	}}
}

// LocateDomain finds the host that runs domain (a UUID, a display name or
// "domains/..."). Retried on UNAVAILABLE. Errors: INVALID_NAME;
// DOMAIN_NOT_FOUND (no host of the fleet runs it); DOMAIN_NAME_AMBIGUOUS
// (several hosts run a domain of that name: use the UUID);
// HOST_NOT_REGISTERED; FLEET_NOT_CONFIGURED.
func (f *Fleet) LocateDomain(ctx context.Context, domain string) (*DomainLocation, error) {
	var r *xenchanpb.LocateDomainResponse
	err := f.retry.do(ctx, func() (err error) {
		r, err = f.rpc.LocateDomain(ctx, &xenchanpb.LocateDomainRequest{Name: DomainName(domain)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &DomainLocation{Domain: r.GetDomain(), Host: r.GetHost(), Revision: r.GetRevision()}, nil
}

// DialHost connects to host's xenchand at its API address with the fleet's
// options. Over TCP the host's advertised identity is the name checked in
// its certificate (a host advertising none is checked as the options say);
// a "unix://" address is dialled as DialUnix does, without TLS.
func (f *Fleet) DialHost(ctx context.Context, host *xenchanpb.Host) (*Client, error) {
	addr := host.GetApiAddress()
	if addr == "" {
		return nil, fmt.Errorf("xenchan: host %q advertises no API address", host.GetHostId())
	}
	if path := strings.TrimPrefix(addr, "unix://"); path != addr {
		return DialUnix(ctx, path, f.opts...)
	}
	return Dial(ctx, addr, hostOptions(f.opts, host)...)
}

// hostOptions are the fleet's options followed by the host's identity as
// the TLS server name, when it advertises one.
func hostOptions(opts []Option, host *xenchanpb.Host) []Option {
	out := append([]Option(nil), opts...)
	if id := host.GetIdentity(); id != "" {
		out = append(out, func(o *options) error {
			if o.tlsConfig != nil {
				c := o.tlsConfig.Clone()
				c.ServerName = id
				o.tlsConfig = c
			}
			return nil
		})
	}
	return out
}

// Dial resolves domain and connects to the host that runs it; the location
// says where that is.
func (f *Fleet) Dial(ctx context.Context, domain string) (*Client, *DomainLocation, error) {
	loc, err := f.LocateDomain(ctx, domain)
	if err != nil {
		return nil, nil, err
	}
	c, err := f.DialHost(ctx, loc.Host)
	if err != nil {
		return nil, nil, err
	}
	return c, loc, nil
}
