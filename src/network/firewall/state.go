package firewall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFileNames are the records, in Options.StateDir, of the rules the
// engine added to built-in chains, per family. They live on a tmpfs so that
// they disappear with the kernel's rules on reboot and survive only a
// daemon restart.
var stateFileNames = [nFamilies]string{"iptables-v4.json", "iptables-v6.json"}

const recordVersion = 1

type record struct {
	Version int           `json:"version"`
	Rules   []builtinRule `json:"rules"`
}

// loadRecord reads the owned rules; no file means none.
func loadRecord(file string) ([]builtinRule, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("%s: unknown version %d", file, r.Version)
	}
	return r.Rules, nil
}

// writeRecord replaces the record whole (write and rename), so a crash
// leaves the old one or the new one, never half of either.
func writeRecord(file string, rules []builtinRule) error {
	if len(rules) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(record{Version: recordVersion, Rules: rules}, "", "\t")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".iptables-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
