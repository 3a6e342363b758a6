// A fleet for end-to-end tests: one real etcd member (Debian's /usr/bin/etcd,
// on Unix sockets in a fresh /tmp directory, as tests/etcd/etcd_cluster.cc
// and scripts/fleet.sh start theirs) and hosts whose xenchands join it with
// --fleet-etcd, each advertising its Unix socket (all hosts run on this
// machine).

package xenchantest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const (
	etcdBinary    = "/usr/bin/etcd"
	etcdctlBinary = "/usr/bin/etcdctl"
)

// Etcd is one running etcd member.
type Etcd struct {
	t        testing.TB
	Dir      string
	Endpoint string // unix:///DIR/m0:2379
	Proc     *Process
}

// StartEtcd starts an etcd member and waits until it serves clients; it is
// killed and its directory removed when the test ends. Without
// /usr/bin/etcd the test fails: scripts/setup.sh installs it.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Fatalf("no %s: run scripts/setup.sh (etcd-server)", etcdBinary)
	}
	dir, err := os.MkdirTemp("/tmp", "xcgo-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &Etcd{t: t, Dir: dir, Endpoint: "unix://" + filepath.Join(dir, "m0:2379")}
	// etcd resolves unix://m0:2379 against its working directory.
	e.Proc = StartIn(t, dir, []string{etcdBinary, "--name", "m0", "--data-dir", filepath.Join(dir, "m0.data"),
		"--listen-client-urls", "unix://m0:2379", "--advertise-client-urls", "unix://m0:2379",
		"--listen-peer-urls", "unix://m0:2380", "--initial-advertise-peer-urls", "unix://m0:2380",
		"--initial-cluster", "m0=unix://m0:2380", "--initial-cluster-state", "new",
		"--initial-cluster-token", "xenchan-go-test", "--heartbeat-interval", "50", "--election-timeout", "500"})
	if !e.Proc.WaitForLog("ready to serve client requests", 60*time.Second) {
		t.Fatalf("etcd did not start:\n%s", e.Proc.Log())
	}
	return e
}

// Keys returns the keys under prefix (Debian's etcdctl).
func (e *Etcd) Keys(prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctlBinary, "--endpoints", e.Endpoint, "get", "--prefix", prefix, "--keys-only")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range strings.Split(out.String(), "\n") {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// StartFleetHost starts a host (StartHost) whose xenchand is in the fleet of
// e as hostID, after creating domains in it (so xenchand knows them once
// ready).
func StartFleetHost(t testing.TB, e *Etcd, hostID string, domains []string, extra ...string) *Host {
	t.Helper()
	h := startSim(t)
	for _, d := range domains {
		h.CreateDomain(d)
	}
	h.Fleet = []string{"--fleet-etcd=" + e.Endpoint, "--fleet-host-id=" + hostID, "--fleet-lease-ttl=5s"}
	h.StartServer(extra...)
	return h
}

// Migrate runs `xensim domain migrate DOMAIN --to` the other host's state.
func (h *Host) Migrate(domain string, to *Host) error {
	_, err := h.Xensim("domain", "migrate", domain, "--to", to.StateDir)
	return err
}

// OpenGuestTTY opens the guest's end of a channel (its tty under the guest's
// root, which the simulated guest makes once the device is connected) in
// raw mode, so that bytes written arrive as written; closed when the test
// ends.
func (h *Host) OpenGuestTTY(domain, channelID string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(h.GuestRoot(domain), "dev", "xen-channel", channelID),
		os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	var t syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		f.Close()
		return nil, e
	}
	// cfmakeraw(3).
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR |
		syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Oflag &^= syscall.OPOST
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag &^= syscall.CSIZE | syscall.PARENB
	t.Cflag |= syscall.CS8
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		f.Close()
		return nil, e
	}
	h.t.Cleanup(func() { f.Close() })
	return f, nil
}
