// End-to-end mutual TLS: xenchand on xensim with a TCP listener, a CA and
// certificates generated at test time, Dial with WithTLSFiles reaching the
// real agent; refused: no client certificate, a certificate from another
// CA, a server the client's CA did not sign; and an authenticated identity
// the policy does not allow, named in PERMISSION_DENIED.

package xenchan_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

const ctlIdentity = "spiffe://xenchan.test/go-sdk"

func TestMutualTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pki := xenchantest.NewPKI(t, dir, "test")
	serverCert, serverKey := pki.Server("server")
	ctlCert, ctlKey := pki.Client("ctl", ctlIdentity)
	otherCert, otherKey := pki.Client("other", "spiffe://xenchan.test/other")
	rogue := xenchantest.NewPKI(t, dir, "rogue")
	rogueCert, rogueKey := rogue.Client("rogue", ctlIdentity)
	policy := filepath.Join(dir, "policy.conf")
	if err := os.WriteFile(policy, []byte("[identity "+ctlIdentity+"]\nallow verbs=read,call,manage domain=* channel=*\n"+
		"[identity *]\nallow verbs=read domain=* channel=*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := xenchantest.StartHost(t, "--listen=127.0.0.1:0", "--tls-cert="+serverCert, "--tls-key="+serverKey,
		"--tls-client-ca="+pki.CAFile(), "--policy="+policy)
	addr := h.TCPAddress()
	if addr == "" || !strings.Contains(h.Server.Log(), "security=mtls") {
		t.Fatalf("no mTLS listener:\n%s", h.Server.Log())
	}
	h.CreateDomain("vm1")
	ctx := testContext(t)
	noRetry := xenchan.WithRetryPolicy(xenchan.RetryPolicy{MaxAttempts: 1})

	// The controller's certificate: list, create, and a Call to the agent.
	c, err := xenchan.Dial(ctx, addr, xenchan.WithTLSFiles(pki.CAFile(), ctlCert, ctlKey, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var found bool
	for deadline := time.Now().Add(30 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		_, err = c.GetDomain(ctx, xenchan.DomainName("vm1")) // xenchand learns of it from xenstore
		found = err == nil
	}
	if !found {
		t.Fatalf("GetDomain over mTLS: %v\n%s", err, h.Server.Log())
	}
	ch, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName("vm1"),
		ChannelId: agentChannel, WaitUntilConnected: true})
	if err != nil {
		t.Fatalf("CreateChannel over mTLS: %v", err)
	}
	agent := h.StartAgent("vm1", t.TempDir())
	if !agent.WaitForLog("(raw)", 30*time.Second) {
		t.Fatalf("agent:\n%s", agent.Log())
	}
	resp, err := c.Call(ctx, ch.GetName(), []byte(`{"op":"ping","id":"tls"}`))
	if err != nil || !strings.Contains(string(resp.GetResponse()), `"op":"pong"`) {
		t.Fatalf("Call over mTLS: %q, %v", resp.GetResponse(), err)
	}

	// Authenticated as someone else: read is allowed, manage is not, and the
	// refusal names the identity the certificate carried.
	other, err := xenchan.Dial(ctx, addr, xenchan.WithTLSFiles(pki.CAFile(), otherCert, otherKey, "localhost"), noRetry)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.GetChannel(ctx, ch.GetName()); err != nil {
		t.Errorf("read as another identity: %v", err)
	}
	_, err = other.DeleteChannel(ctx, &xenchanpb.DeleteChannelRequest{Name: ch.GetName()})
	if xenchan.CodeOf(err) != codes.PermissionDenied || xenchan.ReasonOf(err) != xenchanpb.ErrorReason_ERROR_REASON_PERMISSION_DENIED ||
		!strings.Contains(err.Error(), "spiffe://xenchan.test/other") {
		t.Errorf("delete as another identity: %v, want PERMISSION_DENIED naming it", err)
	}

	// Refused at the handshake.
	caPool := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.CAFile())
	if err != nil || !caPool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file")
	}
	refused := func(what string, opt xenchan.Option) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		r, err := xenchan.Dial(cctx, addr, opt, noRetry)
		if err == nil {
			defer r.Close()
			_, err = r.GetDomain(cctx, xenchan.DomainName("vm1"))
		}
		if err == nil {
			t.Errorf("%s: allowed", what)
		} else if code := xenchan.CodeOf(err); code != codes.Unavailable {
			t.Errorf("%s: %v (code %v), want UNAVAILABLE from the handshake", what, err, code)
		}
	}
	refused("no client certificate", xenchan.WithTLSConfig(&tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12}))
	refused("a certificate from another CA", xenchan.WithTLSFiles(pki.CAFile(), rogueCert, rogueKey, ""))
	refused("a server certificate the client's CA did not sign", xenchan.WithTLSFiles(rogue.CAFile(), ctlCert, ctlKey, ""))
	if _, err := xenchan.Dial(ctx, addr, xenchan.WithTLSFiles(filepath.Join(dir, "missing.pem"), ctlCert, ctlKey, "")); err == nil {
		t.Error("Dial with a missing CA file succeeded")
	}
	// The connections that failed left the server serving.
	if _, err := c.GetChannel(ctx, ch.GetName()); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
}
