// The controller's side of the xenchan-agent protocol (clients/agent/README.md):
// hello, facts and provision over Call, each with a fresh id, and the checks
// that treat every reply as untrusted input from the guest.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"xenchan.dev/go/xenchan"
	"xenchan.dev/go/xenchanpb"
)

const (
	// minAgentProtocol is the first agent protocol with provision's spec_id
	// and facts' provisioned record.
	minAgentProtocol = 2
	// maxReplyBytes bounds one reply line read from a guest.
	maxReplyBytes = 64 << 10
	// maxScanBytes bounds the guest output searched for one reply after
	// Call returned something else.
	maxScanBytes = 1 << 20
	// maxHelloWait bounds one hello: a guest whose agent is not up yet is
	// asked again (with backoff) rather than waited for.
	maxHelloWait = 5 * time.Second
)

// specIDPattern is the agent's spec_id rule: 1-128 bytes of printable ASCII
// without spaces.
var specIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// timePattern is the agent's provisioned.at format.
var timePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

// errAgentTooOld is a permanent failure: the agent cannot record spec ids.
var errAgentTooOld = errors.New("agent protocol too old")

// requestSeq makes request ids unique within this process; requestPrefix
// across processes (a restarted controller must not take a reply to its
// predecessor's request for its own).
var (
	requestSeq    uint64
	requestPrefix = fmt.Sprintf("prov-%x", time.Now().UnixNano())
)

func newRequestID() string {
	return fmt.Sprintf("%s-%d", requestPrefix, atomic.AddUint64(&requestSeq, 1))
}

// Applied is what the guest's agent says was provisioned last.
type Applied struct {
	SpecID string `json:"spec_id"`
	At     string `json:"at"`
}

// replyHead is what every reply is matched by. OK is absent in the echo of
// a request by a guest tty still in cooked mode.
type replyHead struct {
	OK    *bool           `json:"ok"`
	Op    string          `json:"op"`
	ID    json.RawMessage `json:"id"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// matchReply reports whether line is the agent's reply to request id (not
// an echo, not a late reply to another request).
func matchReply(line []byte, id string) (*replyHead, bool) {
	if len(line) > maxReplyBytes {
		return nil, false
	}
	var h replyHead
	want, _ := json.Marshal(id)
	if json.Unmarshal(line, &h) != nil || h.OK == nil || !bytes.Equal(h.ID, want) {
		return nil, false
	}
	return &h, true
}

// replyError is the error of a reply with "ok":false.
func replyError(h *replyHead) error {
	if h.Error == nil {
		return fmt.Errorf("the agent refused %s without an error", h.Op)
	}
	return fmt.Errorf("the agent refused: %.64s: %.256s", h.Error.Code, h.Error.Message)
}

// parseHello checks a hello reply and returns the agent's protocol.
func parseHello(line []byte) (int, error) {
	var r struct {
		Op       string `json:"op"`
		Protocol int    `json:"protocol"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.Op != "hello" {
		return 0, fmt.Errorf("malformed hello reply %.200q", line)
	}
	if r.Protocol < minAgentProtocol {
		return r.Protocol, fmt.Errorf("%w: the agent speaks protocol %d, spec ids need %d",
			errAgentTooOld, r.Protocol, minAgentProtocol)
	}
	return r.Protocol, nil
}

// parseFacts returns the provisioned record of a facts reply: nil if there
// is none. invalid says the guest sent one that breaks the agent's rules
// (then nothing is taken as applied).
func parseFacts(line []byte) (applied *Applied, invalid bool, err error) {
	var r struct {
		Op          string          `json:"op"`
		Provisioned json.RawMessage `json:"provisioned"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.Op != "facts" {
		return nil, false, fmt.Errorf("malformed facts reply %.200q", line)
	}
	if len(r.Provisioned) == 0 || string(r.Provisioned) == "null" {
		return nil, false, nil
	}
	var a Applied
	if json.Unmarshal(r.Provisioned, &a) != nil || !specIDPattern.MatchString(a.SpecID) || !timePattern.MatchString(a.At) {
		return nil, true, nil
	}
	return &a, false, nil
}

// agentConn is one guest's agent, reached through its channel.
type agentConn struct {
	client  *xenchan.Client
	channel string
	timeout time.Duration
}

// exchange sends request (which carries id) and returns the reply line with
// that id. Call returns the first line after the request; if that is not the
// reply (an echo, a late reply to an earlier request), the channel's output
// after it is searched, within the same deadline and at most maxScanBytes.
func (a *agentConn) exchange(ctx context.Context, request []byte, id string, timeout time.Duration) ([]byte, *replyHead, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.client.Call(cctx, a.channel, request)
	if err != nil {
		return nil, nil, err
	}
	if h, ok := matchReply(resp.GetResponse(), id); ok {
		return resp.GetResponse(), h, nil
	}
	start := &xenchanpb.ReadStart{Point: &xenchanpb.ReadStart_Position{Position: &xenchanpb.Position{
		Epoch: resp.GetEpoch(), Offset: resp.GetResponseOffset()}}}
	it := a.client.Read(cctx, a.channel, xenchan.ReadOptions{Start: start, Follow: true, FailOnLoss: true})
	defer it.Close()
	var line []byte
	skipping, scanned := false, 0
	for {
		item, err := it.Next()
		if err != nil {
			return nil, nil, fmt.Errorf("no reply to %s (first line %.200q): %w", id, resp.GetResponse(), err)
		}
		if item.EpochChange != nil {
			return nil, nil, fmt.Errorf("no reply to %s: the channel started a new epoch", id)
		}
		data := item.Data.GetData()
		if scanned += len(data); scanned > maxScanBytes {
			return nil, nil, fmt.Errorf("no reply to %s in %d bytes of guest output", id, maxScanBytes)
		}
		for len(data) > 0 {
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				if !skipping {
					line = append(line, data...)
				}
				if len(line) > maxReplyBytes {
					line, skipping = nil, true
				}
				break
			}
			if !skipping {
				line = append(line, data[:nl]...)
				if h, ok := matchReply(bytes.TrimSpace(line), id); ok {
					return bytes.TrimSpace(line), h, nil
				}
			}
			line, skipping, data = line[:0], false, data[nl+1:]
		}
	}
}

// call sends {"op":op,"id":...} and returns the successful reply line.
func (a *agentConn) call(ctx context.Context, op string, timeout time.Duration) ([]byte, error) {
	id := newRequestID()
	req, _ := json.Marshal(map[string]string{"op": op, "id": id})
	line, h, err := a.exchange(ctx, req, id, timeout)
	if err != nil {
		return nil, err
	}
	if !*h.OK {
		return nil, replyError(h)
	}
	return line, nil
}

// hello makes sure the agent is up, its tty in raw mode (so that nothing
// sent after is echoed), and that it speaks a protocol with spec ids.
func (a *agentConn) hello(ctx context.Context) error {
	t := a.timeout
	if t > maxHelloWait {
		t = maxHelloWait
	}
	line, err := a.call(ctx, "hello", t)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	_, err = parseHello(line)
	return err
}

// facts returns what the agent says was provisioned (nil: nothing valid).
func (a *agentConn) facts(ctx context.Context) (applied *Applied, invalid bool, err error) {
	line, err := a.call(ctx, "facts", a.timeout)
	if err != nil {
		return nil, false, fmt.Errorf("facts: %w", err)
	}
	return parseFacts(line)
}

// provision applies spec, recorded by the agent under specID. A refusal by
// the agent is permanent except IO_ERROR.
func (a *agentConn) provision(ctx context.Context, spec *Spec, specID string) (written int, err error) {
	id := newRequestID()
	req, err := spec.Request(id, specID)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errPermanent, err)
	}
	line, h, err := a.exchange(ctx, req, id, a.timeout)
	if err != nil {
		return 0, err
	}
	if !*h.OK {
		if h.Error != nil && h.Error.Code == "IO_ERROR" {
			return 0, replyError(h)
		}
		return 0, fmt.Errorf("%w: %v", errPermanent, replyError(h))
	}
	var r struct {
		Written     []string `json:"written"`
		Provisioned *Applied `json:"provisioned"`
	}
	if json.Unmarshal(line, &r) != nil || r.Provisioned == nil || r.Provisioned.SpecID != specID {
		return 0, fmt.Errorf("provision reply without the record of %s: %.200q", specID, line)
	}
	return len(r.Written), nil
}
