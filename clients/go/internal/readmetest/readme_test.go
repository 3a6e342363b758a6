// Package readmetest runs the Go examples of the module's README.md so that
// they cannot rot: every ```go block is the body of
// `func example(ctx context.Context, target string) error`, compiled into a
// program of its own (placed in the module through `go build -overlay`, so
// nothing is written to the source tree) and run against xenchand on xensim
// with a guest vm1 whose agent answers. A `// Prints: TEXT` comment in a
// block must appear in that program's output.
//
// Why this and not Example functions: the README stays the one copy of the
// examples (an ExampleXxx beside it would be a second one, free to differ),
// and the blocks are run against the real server rather than only compiled
// (an Example without an `// Output:` is never run, and one with it could not
// reach a server).
package readmetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"xenchan.dev/go/internal/xenchantest"
	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

// program wraps one block; the imports are those README.md promises, each
// used once so that a block need not use them all.
const program = `// Example %d of README.md, wrapped by internal/readmetest.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

var (
	_ = errors.New
	_ = fmt.Sprint
	_ = time.Second
	_ xenchanpb.ErrorReason
	_ = xenchan.AllDomains
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := example(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func example(ctx context.Context, target string) error {
%s
	return nil
}
`

var (
	goBlock = regexp.MustCompile("(?s)\n```go\n(.*?)\n```\n")
	prints  = regexp.MustCompile(`// Prints: (.*)`)
)

// moduleRoot is the directory of go.mod above the test's.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
	}
	t.Fatal("no go.mod above the test")
	return ""
}

type example struct {
	n      int
	source string
	bin    string
	want   []string
}

// buildExamples compiles every go block of README.md.
func buildExamples(t *testing.T, root string) []example {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	tmp := t.TempDir()
	for i, m := range goBlock.FindAllSubmatch(readme, -1) {
		e := example{n: i + 1, source: string(m[1]), bin: filepath.Join(tmp, fmt.Sprintf("example%d", i+1))}
		for _, p := range prints.FindAllStringSubmatch(e.source, -1) {
			e.want = append(e.want, strings.TrimSpace(p[1]))
		}
		src := filepath.Join(tmp, fmt.Sprintf("example%d.go", e.n))
		if err := os.WriteFile(src, []byte(fmt.Sprintf(program, e.n, e.source)), 0o644); err != nil {
			t.Fatal(err)
		}
		// The program as if it were a package of the module, for its imports.
		virtual := filepath.Join(root, "internal", "readmetest", fmt.Sprintf("example%d", e.n), "main.go")
		overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {virtual: src}})
		overlayFile := filepath.Join(tmp, fmt.Sprintf("overlay%d.json", e.n))
		if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", e.bin, "./"+filepath.Join("internal", "readmetest", fmt.Sprintf("example%d", e.n)))
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README.md example %d does not compile: %v\n%s\nthe program:\n%s", e.n, err, b, fmt.Sprintf(program, e.n, e.source))
			continue
		}
		out = append(out, e)
	}
	return out
}

func TestReadmeExamplesCompileAndRun(t *testing.T) {
	root := moduleRoot(t)
	examples := buildExamples(t, root)
	if len(examples) < 3 || t.Failed() {
		t.Fatalf("%d examples compiled; README.md has at least 3", len(examples))
	}

	h := xenchantest.StartHost(t)
	h.CreateDomain("vm1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := xenchan.DialUnix(ctx, h.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err = c.GetDomain(ctx, xenchan.DomainName("vm1")); err == nil || time.Now().After(deadline) {
			break // xenchand learns of the domain from xenstore: polled with a deadline
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateChannel(ctx, &xenchanpb.CreateChannelRequest{Parent: xenchan.DomainName("vm1"),
		ChannelId: "org.xenchan.agent.0", WaitUntilConnected: true}); err != nil {
		t.Fatal(err)
	}
	if agent := h.StartAgent("vm1", t.TempDir()); !agent.WaitForLog("(raw)", 30*time.Second) {
		t.Fatalf("agent:\n%s", agent.Log())
	}

	for _, e := range examples {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, e.bin, "unix://"+h.Socket)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("README.md example %d failed: %v\n%s\n%s", e.n, err, out.String(), e.source)
			continue
		}
		for _, w := range e.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("README.md example %d printed %q, without %q", e.n, out.String(), w)
			}
		}
	}
}
