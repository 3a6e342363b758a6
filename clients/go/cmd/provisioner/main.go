// provisioner: a controller that provisions Xen guests through
// xenchan-agent. It watches the agent channels (org.xenchan.agent.0) of a
// xenchand host, or of every host of a fleet (--fleet); whenever one is
// connected it applies the guest's spec from
// SPEC_DIR ({uuid}.json or {name}.json: hostname, SSH keys, files) with the
// agent's `provision` op, once: the agent records the spec's digest and
// reports it in `facts`, which the controller asks first (README.md,
// "Provisioner", says why the guest and not a local state file).
//
//	provisioner --target unix:///run/xenchan/xenchand.sock --specs DIR
//	            [--tls-ca F --tls-cert F --tls-key F] [--concurrency 4]
//	provisioner --fleet TARGET --specs DIR [...]
//
// With --fleet, TARGET is any xenchand of a fleet (docs/FLEET.md): the
// controller runs one watch per registered host, dialled at the host's
// advertised address with the same TLS flags and checked against its
// advertised identity, starts one for a host that joins and stops the one of
// a host that leaves. Workers, --concurrency and the in-flight set are
// shared by all hosts.
//
// Exit status: 0 after SIGTERM or SIGINT, 1 if the watch fails for good, 2
// for a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"xenchan.dev/go/xenchan"
)

func main() {
	target := flag.String("target", "unix:///run/xenchan/xenchand.sock", "xenchand: unix:///path or host:port (mutual TLS)")
	specs := flag.String("specs", "", "directory of per-VM specs, {uuid}.json or {name}.json")
	channel := flag.String("channel", "org.xenchan.agent.0", "the agent's channel id")
	parent := flag.String("parent", xenchan.AllDomains, "domains to watch: domains/- or domains/{domain}")
	concurrency := flag.Int("concurrency", 4, "guests provisioned at once")
	callTimeout := flag.Duration("call-timeout", 30*time.Second, "deadline of one agent call")
	tlsCA := flag.String("tls-ca", "", "CA of xenchand's certificate (TCP targets)")
	tlsCert := flag.String("tls-cert", "", "client certificate (TCP targets)")
	tlsKey := flag.String("tls-key", "", "client key (TCP targets)")
	fleetTarget := flag.String("fleet", "", "any xenchand of a fleet: provision the guests of every host (instead of --target)")
	flag.Parse()
	targetSet := false
	flag.Visit(func(f *flag.Flag) { targetSet = targetSet || f.Name == "target" })
	if *specs == "" || *concurrency < 1 || flag.NArg() != 0 || (*fleetTarget != "" && targetSet) {
		fmt.Fprintln(os.Stderr, "provisioner: --specs is required; --concurrency must be at least 1; --target or --fleet, not both")
		flag.Usage()
		os.Exit(2)
	}
	log := &Logger{w: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	retry := xenchan.DefaultRetryPolicy
	retry.MaxAttempts = -1 // the watch rides out any xenchand outage
	opts := []xenchan.Option{xenchan.WithRetryPolicy(retry)}
	if *tlsCA != "" {
		opts = append(opts, xenchan.WithTLSFiles(*tlsCA, *tlsCert, *tlsKey, ""))
	}
	c := &Controller{
		Parent: *parent, ChannelID: *channel, SpecDir: *specs,
		Concurrency: *concurrency, Retry: xenchan.RetryPolicy{InitialBackoff: 200 * time.Millisecond,
			MaxBackoff: 10 * time.Second, Multiplier: 2, MaxAttempts: 8},
		CallTimeout: *callTimeout, Log: log,
	}
	if *fleetTarget != "" {
		fleet, err := xenchan.DialFleet(ctx, *fleetTarget, opts...)
		if err != nil {
			log.Error("dial", "fleet", *fleetTarget, "error", err)
			os.Exit(1)
		}
		defer fleet.Close()
		log.Info("starting", "fleet", *fleetTarget, "parent", *parent, "channel", *channel, "concurrency", *concurrency)
		err = c.RunFleet(ctx, fleet)
		exit(log, err)
		return
	}
	client, err := xenchan.Dial(ctx, *target, opts...)
	if err != nil {
		log.Error("dial", "target", *target, "error", err)
		os.Exit(1)
	}
	defer client.Close()
	log.Info("starting", "target", *target, "parent", *parent, "channel", *channel, "concurrency", *concurrency)
	exit(log, c.Run(ctx, client, *target))
}

// exit logs how the controller stopped; a failure exits 1.
func exit(log *Logger, err error) {
	if err != nil {
		log.Error("stopped", "error", err)
		os.Exit(1)
	}
	log.Info("stopped")
}
