// Per-VM provisioning specs: SPEC_DIR/{uuid}.json or SPEC_DIR/{name}.json,
// checked before use and sent to xenchan-agent's `provision` op.

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Spec is what one guest gets: the members of the agent's `provision` op
// (clients/agent/README.md).
type Spec struct {
	// Hostname is written to /etc/hostname.
	Hostname string `json:"hostname,omitempty"`
	// SSHAuthorizedKeys replace User's authorized_keys.
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	// User owns the keys (default root).
	User string `json:"user,omitempty"`
	// Files are written atomically below the guest's root.
	Files []SpecFile `json:"files,omitempty"`
}

// SpecFile is one file of a Spec; Content is base64, Mode an octal string
// or an integer.
type SpecFile struct {
	Path    string          `json:"path"`
	Content string          `json:"content"`
	Mode    json.RawMessage `json:"mode,omitempty"`
}

// specFileName is what a spec file may be called: a UUID or a domain name
// without path separators.
var specFileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// LoadSpec reads the spec of a domain: by UUID first, then by display name.
// It returns (nil, "", nil) if there is none. Unknown members are refused,
// as the agent refuses them.
func LoadSpec(dir, uuid, name string) (*Spec, string, error) {
	for _, key := range []string{uuid, name} {
		if key == "" || !specFileName.MatchString(key) {
			continue
		}
		path := filepath.Join(dir, key+".json")
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if len(raw) > 512<<10 {
			return nil, "", fmt.Errorf("%s: larger than 512 KiB", path)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var s Spec
		if err := dec.Decode(&s); err != nil {
			return nil, "", fmt.Errorf("%s: %v", path, err)
		}
		return &s, path, nil
	}
	return nil, "", nil
}

// Digest identifies a spec's content (the first 128 bits of the SHA-256 of
// its JSON, in hex): the spec_id the agent records, so a changed spec is a
// new provisioning.
func (s *Spec) Digest() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Request is the agent request applying the spec, tagged with id, recorded
// by the agent under specID once it is applied.
func (s *Spec) Request(id, specID string) ([]byte, error) {
	type request struct {
		Op     string `json:"op"`
		ID     string `json:"id"`
		SpecID string `json:"spec_id"`
		*Spec
	}
	b, err := json.Marshal(request{Op: "provision", ID: id, SpecID: specID, Spec: s})
	if err == nil && len(b) > maxRequestBytes {
		err = fmt.Errorf("the provision request is %d bytes; a Call carries at most %d", len(b), maxRequestBytes)
	}
	return b, err
}

// maxRequestBytes is what one Call may carry (CallRequest.request).
const maxRequestBytes = 64 << 10
