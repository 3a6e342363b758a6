// Paged listings as iterators (ListDomains, ListChannels).

package xenchan

import (
	"context"
	"errors"

	"xenchan.dev/go/xenchanpb"
)

// Done is returned by an iterator's Next when there are no more items.
var Done = errors.New("xenchan: no more items in iterator")

// Iterator walks a paged listing, fetching pages as needed. Not safe for
// concurrent use.
type Iterator[T any] struct {
	fetch func(token string) ([]T, string, error)
	buf   []T
	token string
	begun bool
	err   error
}

// Next returns the next item, Done after the last one, or the error that
// ended the listing (after which it keeps returning that error).
func (it *Iterator[T]) Next() (T, error) {
	var zero T
	for len(it.buf) == 0 {
		if it.err != nil {
			return zero, it.err
		}
		if it.begun && it.token == "" {
			it.err = Done
			return zero, Done
		}
		it.begun = true
		items, next, err := it.fetch(it.token)
		if err != nil {
			it.err = err
			return zero, err
		}
		it.buf, it.token = items, next
	}
	item := it.buf[0]
	it.buf = it.buf[1:]
	return item, nil
}

// All drains the iterator into a slice.
func (it *Iterator[T]) All() ([]T, error) {
	var out []T
	for {
		item, err := it.Next()
		if err == Done {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
}

// ListDomains lists the host's guest domains the caller may see, in UUID
// order. Each page is retried on UNAVAILABLE.
func (c *Client) ListDomains(ctx context.Context) *Iterator[*xenchanpb.Domain] {
	return &Iterator[*xenchanpb.Domain]{fetch: func(token string) ([]*xenchanpb.Domain, string, error) {
		var r *xenchanpb.ListDomainsResponse
		err := c.retry.do(ctx, func() (err error) {
			r, err = c.rpc.ListDomains(ctx, &xenchanpb.ListDomainsRequest{PageToken: token})
			return err
		})
		return r.GetDomains(), r.GetNextPageToken(), err
	}}
}

// ListChannelsOptions narrows ListChannels; the zero value lists every
// channel.
type ListChannelsOptions struct {
	// Filter selects by transport and channel-id prefix.
	Filter *xenchanpb.ChannelFilter
	// States keeps only channels in one of these states.
	States []xenchanpb.ChannelState
	// PageSize is the page size asked for (0: the server's default).
	PageSize int32
}

// ListChannels lists the channels of parent ("domains/{domain}", or
// AllDomains) in (domain UUID, channel id) order. Each page is retried on
// UNAVAILABLE. opts may be nil.
func (c *Client) ListChannels(ctx context.Context, parent string, opts *ListChannelsOptions) *Iterator[*xenchanpb.Channel] {
	if opts == nil {
		opts = &ListChannelsOptions{}
	}
	return &Iterator[*xenchanpb.Channel]{fetch: func(token string) ([]*xenchanpb.Channel, string, error) {
		req := &xenchanpb.ListChannelsRequest{
			Parent: parent, PageSize: opts.PageSize, PageToken: token, Filter: opts.Filter, States: opts.States,
		}
		var r *xenchanpb.ListChannelsResponse
		err := c.retry.do(ctx, func() (err error) {
			r, err = c.rpc.ListChannels(ctx, req)
			return err
		})
		return r.GetChannels(), r.GetNextPageToken(), err
	}}
}
