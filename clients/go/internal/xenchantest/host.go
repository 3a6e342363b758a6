// Package xenchantest runs the real xensim (simulated Xen host), xenchand and
// xenchan-agent as child processes for end-to-end tests of the Go SDK and
// the provisioner.
//
// The binaries are Bazel's: their paths come from XENCHAN_XENSIM,
// XENCHAN_XENCHAND and XENCHAN_AGENT (tests/clients/go sets them from its
// runfiles), or else from the repository's bazel-bin after
// `bazel build //backend/sim:xensim //server:xenchand //clients/agent:xenchan-agent`.
// Without them the end-to-end tests skip.
package xenchantest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries are the paths of the three programs.
type Binaries struct{ Xensim, Xenchand, Agent string }

// FindBinaries returns the binaries, or skips the test if they are missing.
func FindBinaries(t testing.TB) Binaries {
	t.Helper()
	find := func(env, rel string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		// clients/go/<pkg dirs...>: walk up to the repository root.
		dir, _ := os.Getwd()
		for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if p := filepath.Join(dir, "bazel-bin", rel); fileExists(p) {
				return p
			}
		}
		return ""
	}
	b := Binaries{
		Xensim:   find("XENCHAN_XENSIM", "backend/sim/xensim"),
		Xenchand: find("XENCHAN_XENCHAND", "server/xenchand"),
		Agent:    find("XENCHAN_AGENT", "clients/agent/xenchan-agent"),
	}
	for _, p := range []string{b.Xensim, b.Xenchand, b.Agent} {
		if !fileExists(p) {
			t.Skip("xensim, xenchand or xenchan-agent not built (bazel test //tests/clients/go:sdk_test runs this test with them)")
		}
	}
	return b
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Process is a child process whose stderr and stdout are collected.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	log  bytes.Buffer
	done bool
	exit chan struct{}
}

// Start runs argv with its output collected.
func Start(t testing.TB, argv []string, env ...string) *Process {
	t.Helper()
	return StartIn(t, "", argv, env...)
}

// StartIn runs argv in working directory dir ("": the test's) with its
// output collected.
func StartIn(t testing.TB, dir string, argv []string, env ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(argv[0], argv[1:]...), exit: make(chan struct{})}
	p.cmd.Dir = dir
	p.cond = sync.NewCond(&p.mu)
	p.cmd.Env = append(os.Environ(), env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", argv[0], err)
	}
	w.Close()
	go func() {
		sc := bufio.NewReader(r)
		buf := make([]byte, 4096)
		for {
			n, err := sc.Read(buf)
			p.mu.Lock()
			p.log.Write(buf[:n])
			if err != nil {
				p.done = true
			}
			p.cond.Broadcast()
			p.mu.Unlock()
			if err != nil {
				r.Close()
				return
			}
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.exit) }()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Log returns everything the process printed so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// WaitForLog waits until the output contains text, the output ends, or
// timeout passes; it reports whether the text appeared.
func (p *Process) WaitForLog(text string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !strings.Contains(p.log.String(), text) {
		if p.done || time.Now().After(deadline) {
			return strings.Contains(p.log.String(), text)
		}
		p.cond.Wait()
	}
	return true
}

// Signal sends sig and waits (at most 30 s, then SIGKILL) for the exit.
func (p *Process) Signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exit:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exit
	}
}

// Stop sends SIGTERM and waits for the exit.
func (p *Process) Stop() { p.Signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() { p.Signal(syscall.SIGKILL) }

// ExitCode is the exit status once the process has exited.
func (p *Process) ExitCode() int {
	<-p.exit
	return p.cmd.ProcessState.ExitCode()
}

// Host is a running xensim with xenchand on it.
type Host struct {
	t        testing.TB
	Bin      Binaries
	Dir      string // short scratch directory under /tmp
	StateDir string // xensim's state directory
	Socket   string // xenchand's Unix socket
	Sim      *Process
	Server   *Process
	// Fleet holds the xenchand flags that put the host in a fleet
	// (StartFleetHost); StartServer always passes them.
	Fleet []string
}

// StartHost starts xensim and xenchand (--platform=sim, on a Unix socket in
// a fresh /tmp directory: TEST_TMPDIR paths are too long for sockets), with
// extra xenchand flags.
func StartHost(t testing.TB, extra ...string) *Host {
	t.Helper()
	h := startSim(t)
	h.StartServer(extra...)
	return h
}

// startSim starts xensim in a fresh short /tmp directory: a Host without
// its xenchand yet.
func startSim(t testing.TB) *Host {
	t.Helper()
	bin := FindBinaries(t)
	dir, err := os.MkdirTemp("/tmp", "xcgo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &Host{t: t, Bin: bin, Dir: dir, StateDir: filepath.Join(dir, "s"), Socket: filepath.Join(dir, "x.sock")}
	h.Sim = Start(t, []string{bin.Xensim, "serve", "--state-dir", h.StateDir})
	if !h.Sim.WaitForLog("xensim: ready", 30*time.Second) {
		t.Fatalf("xensim did not start:\n%s", h.Sim.Log())
	}
	return h
}

var tcpListening = regexp.MustCompile(`msg=listening address=(\S+) transport=tcp`)

// TCPAddress is the HOST:PORT xenchand's first TCP listener bound ("" if it
// has none): its log names the port chosen for a `:0` listener.
func (h *Host) TCPAddress() string {
	if m := tcpListening.FindStringSubmatch(h.Server.Log()); m != nil {
		return m[1]
	}
	return ""
}

// StartServer starts xenchand (again) with extra flags.
func (h *Host) StartServer(extra ...string) {
	h.t.Helper()
	args := append([]string{h.Bin.Xenchand, "--platform=sim", "--sim-state-dir=" + h.StateDir,
		"--listen=unix://" + h.Socket}, h.Fleet...)
	args = append(args, extra...)
	h.Server = Start(h.t, args)
	if !h.Server.WaitForLog("msg=ready", 30*time.Second) {
		h.t.Fatalf("xenchand did not start:\n%s", h.Server.Log())
	}
}

// Xensim runs the xensim command line against the host and returns stdout.
func (h *Host) Xensim(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Bin.Xensim, append([]string{"--state-dir", h.StateDir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("xensim %v: %v: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// CreateDomain creates a simulated guest.
func (h *Host) CreateDomain(name string) {
	h.t.Helper()
	if _, err := h.Xensim("domain", "create", "--name", name); err != nil {
		h.t.Fatal(err)
	}
}

// GuestRoot is a guest's root directory (where its /dev/xen-channel is).
func (h *Host) GuestRoot(name string) string {
	return filepath.Join(h.StateDir, "guests", name, "root")
}

// StartAgent runs xenchan-agent in guest `name` on channel
// org.xenchan.agent.0, provisioning into targetRoot.
func (h *Host) StartAgent(name, targetRoot string) *Process {
	h.t.Helper()
	return Start(h.t, []string{h.Bin.Agent, "--channel", "org.xenchan.agent.0", "--root", h.GuestRoot(name),
		"--target-root", targetRoot, "--no-wait-connected"})
}
