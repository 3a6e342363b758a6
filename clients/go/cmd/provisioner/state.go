// The controller's record of what it applied: one small JSON file per
// domain UUID in STATE_DIR, replaced atomically.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Record is the state of one domain. Intent is written before the agent is
// asked (with the channel position its reply will follow), Done after it
// answered: a controller killed in between finds the Intent and looks for
// the reply in the channel's retained output instead of provisioning again.
type Record struct {
	// Digest is the spec digest of Intent or Done.
	Digest string `json:"digest"`
	// RequestID is the id of the provision request sent.
	RequestID string `json:"request_id"`
	// Epoch and Offset are the channel's next guest-to-host position when
	// the request was sent: the reply comes after it.
	Epoch  uint64 `json:"epoch"`
	Offset uint64 `json:"offset"`
	// Done is true once the agent confirmed the provisioning.
	Done bool `json:"done"`
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// State is the directory of records. Safe for concurrent use on different
// UUIDs (the controller never works on one UUID twice at once).
type State struct{ dir string }

func (s State) path(uuid string) (string, error) {
	if !uuidPattern.MatchString(uuid) {
		return "", fmt.Errorf("state: %q is not a lowercase UUID", uuid)
	}
	return filepath.Join(s.dir, uuid+".json"), nil
}

// Get returns the record of uuid, or nil if there is none.
func (s State) Get(uuid string) (*Record, error) {
	p, err := s.path(uuid)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	return &r, nil
}

// Put replaces the record of uuid atomically (temp file, fsync, rename,
// fsync of the directory), so a kill leaves the old or the new record.
func (s State) Put(uuid string, r *Record) error {
	p, err := s.path(uuid)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".rec-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
