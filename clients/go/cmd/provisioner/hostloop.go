// One host's loop: watch the agent channels of one xenchand and hand each
// connected one to the controller's shared workers. Run uses one for its
// target; RunFleet one per host of the fleet.

package main

import (
	"context"
	"fmt"

	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// watchHost watches client's agent channels (resuming and relisting as
// Watch does) until ctx ends (then it returns nil) or the watch fails for
// good. log names the host.
func (c *Controller) watchHost(ctx context.Context, client *xenchan.Client, log *Logger) error {
	w := client.Watch(ctx, c.Parent, xenchan.WatchOptions{Filter: &xenchanpb.ChannelFilter{ChannelIdPrefix: c.ChannelID}})
	defer w.Close()
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		}
		if ev.GetType() == xenchanpb.ChannelEventType_CHANNEL_EVENT_TYPE_SYNCED {
			log.Info("synced", "revision", ev.GetRevision(), "relists", w.Relists())
		}
		ch := ev.GetChannel()
		if ch.GetChannelId() != c.ChannelID || ch.GetState() != xenchanpb.ChannelState_CHANNEL_STATE_CONNECTED {
			continue
		}
		if !c.submit(&job{ctx: ctx, client: client, log: log, ch: ch}) {
			return nil
		}
	}
}
