package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A catalog push remembers, per endpoint and source, what it sent (package push's Ledger), on
// the agent's disk only:
//
//	<root>/[<prefix>/]<connector>/%pushed/<key>.json
//
// The key is a hex digest (package activities: the format, the endpoint's URL, the source label);
// the file maps each record's key (a dataset's namespace and name, a proposal's entity and
// aspect) to the digest of the content sent. It holds catalog names as the formats hold them,
// never a credential. "%pushed" is a name SafeComponent never produces.
const pushedDir = "%pushed"

func pushedPath(root, prefix, connector, key string) string {
	return filepath.Join(PrefixDir(root, prefix), SafeComponent(connector), pushedDir, key+".json")
}

// ReadPushed returns what was sent for key (empty when nothing was, or the file is unreadable:
// everything is sent again, which a catalog takes as an update).
func ReadPushed(root, prefix, connector, key string) (map[string]string, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("output: push ledger key %q is not 64 hex digits", key)
	}
	b, err := os.ReadFile(pushedPath(root, prefix, connector, key))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: reading the push ledger: %w", err)
	}
	sent := map[string]string{}
	if json.Unmarshal(b, &sent) != nil {
		return map[string]string{}, nil
	}
	return sent, nil
}

// WritePushed replaces the ledger of key with sent.
func WritePushed(root, prefix, connector, key string, sent map[string]string) error {
	if !validKey(key) {
		return fmt.Errorf("output: push ledger key %q is not 64 hex digits", key)
	}
	p := pushedPath(root, prefix, connector, key)
	if err := os.MkdirAll(filepath.Dir(p), dirPerm); err != nil {
		return fmt.Errorf("output: creating the push ledger directory: %w", err)
	}
	err := writeAtomically(filepath.Dir(p), filepath.Base(p), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(sent)
	})
	if err != nil {
		return fmt.Errorf("output: writing the push ledger: %w", err)
	}
	return nil
}
