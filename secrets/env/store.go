// Package env reads secrets from the agent's own environment variables.
//
// Each connection field names a variable. Only variables matching the agent's allowlist can be
// read, and a built-in denylist always protects the agent's own credentials and settings
// (AWS_*, AZURE_*, GOOGLE_*, TEMPORAL_*, SECURE_AGENT_* and the like), whatever the allowlist
// says. The default allowlist is empty: nothing is readable until the operator allows it.
package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's type name.
const Name = "env"

// Denied lists the patterns that are never readable: the agent's own cloud credentials, workload
// identity endpoints and headers, its Temporal connection and its own settings.
var Denied = []string{
	"AWS_*", "AZURE_*", "ARM_*", "MSI_*", "IDENTITY_*", "IMDS_*",
	"GOOGLE_*", "GCE_*", "CLOUDSDK_*", "TEMPORAL_*", "SECURE_AGENT_*",
}

var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

// Options configure the store. They are agent-side settings, never workflow input.
type Options struct {
	// Allow holds glob patterns (path.Match syntax: * and ?, case-sensitive) of the variables
	// the store may read, such as "DB_*" or "*_PASSWORD". Empty allows nothing.
	Allow []string
	// LookupEnv reads a variable; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Store reads allowed environment variables.
type Store struct {
	allow     []string
	lookupEnv func(string) (string, bool)
}

var (
	_ secrets.Store         = (*Store)(nil)
	_ secrets.PerFieldStore = (*Store)(nil)
)

// New returns a store for opts. A malformed pattern is InvalidInput.
func New(opts Options) (*Store, error) {
	var errs []error
	for _, p := range opts.Allow {
		if _, err := path.Match(p, ""); err != nil || strings.TrimSpace(p) == "" {
			errs = append(errs, &secrets.Error{Kind: secrets.InvalidInput, Store: Name,
				Msg: fmt.Sprintf("allowlist pattern %q is not a valid glob: use letters, digits, _ and the wildcards * and ?", p)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Store{allow: append([]string(nil), opts.Allow...), lookupEnv: opts.LookupEnv}
	if s.lookupEnv == nil {
		s.lookupEnv = os.LookupEnv
	}
	return s, nil
}

// ValidName reports whether name has the form of an environment variable name this store reads:
// letters, digits and _, not starting with a digit, at most 256 characters.
func ValidName(name string) bool { return validName.MatchString(name) }

// Names reports whether value is a variable name this store may read: a valid name that the
// allowlist admits and the denylist does not refuse.
func (s *Store) Names(value string) bool {
	return validName.MatchString(value) && DeniedBy(value) == "" && s.allowedBy(value) != ""
}

// Fetch returns the value of the variable named by ref.Path. A name the policy refuses is
// PolicyDenied; an unset or empty variable is SecretNotFound.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	fail := func(kind secrets.Kind, msg string) error {
		return &secrets.Error{Kind: kind, Store: Name, Ref: ref.String(), Msg: msg}
	}
	name := ref.Path
	switch {
	case ref.Version != "" || ref.Stage != "":
		return nil, fail(secrets.InvalidInput, "environment variables have no versions: remove the version")
	case !validName.MatchString(name):
		return nil, fail(secrets.InvalidInput, "is not a valid environment variable name: use letters, digits and _, not starting with a digit")
	}
	if p := DeniedBy(name); p != "" {
		return nil, fail(secrets.PolicyDenied, fmt.Sprintf("variables matching %q hold the agent's own credentials or settings and can never be read through the env store", p))
	}
	if s.allowedBy(name) == "" {
		return nil, fail(secrets.PolicyDenied, "is not on the agent's env-store allowlist: add a matching pattern to SECURE_AGENT_ENV_ALLOW on the agent")
	}
	v, ok := s.lookupEnv(name)
	if !ok {
		return nil, fail(secrets.SecretNotFound, "is not set in the agent's environment: set it on the agent (for example from a Kubernetes secret) or fix the name")
	}
	if v == "" {
		return nil, fail(secrets.SecretNotFound, "is set but empty in the agent's environment: give it a value")
	}
	return &secrets.Secret{Value: secrets.Value(v)}, nil
}

// DeniedBy returns the denylist pattern that matches name, or "". The match ignores case, so
// aws_secret_access_key is as protected as AWS_SECRET_ACCESS_KEY.
func DeniedBy(name string) string {
	upper := strings.ToUpper(name)
	for _, p := range Denied {
		if ok, _ := path.Match(p, upper); ok {
			return p
		}
	}
	return ""
}

// allowedBy returns the allowlist pattern that matches name, or "".
func (s *Store) allowedBy(name string) string {
	for _, p := range s.allow {
		if ok, _ := path.Match(p, name); ok {
			return p
		}
	}
	return ""
}

// MatchesEverything reports whether an allowlist pattern has no literal character ("*", "?*",
// "*?*"...): it lets workflow input read every variable of the agent that the denylist does not
// name, the ones other teams' passwords and the custom stores' tokens are kept in among them.
func MatchesEverything(pattern string) bool {
	return pattern != "" && strings.Trim(pattern, "*?") == ""
}

// Overlap reports whether some variable name matches both glob patterns a and b (path.Match
// syntax limited to literals, "*" and "?", case-sensitive as variable names are). Patterns with
// "[" or "\" are treated as overlapping anything, the safe answer for a check that refuses
// overlaps.
func Overlap(a, b string) bool {
	if strings.ContainsAny(a, `[\`) || strings.ContainsAny(b, `[\`) {
		return true
	}
	// seen[i][j]: the suffixes a[i:] and b[j:] have been explored. Each state is visited once,
	// so the search is O(len(a) * len(b)).
	seen := make([][]bool, len(a)+1)
	for i := range seen {
		seen[i] = make([]bool, len(b)+1)
	}
	var walk func(i, j int) bool
	walk = func(i, j int) bool {
		if seen[i][j] {
			return false
		}
		seen[i][j] = true
		switch {
		case i == len(a) && j == len(b):
			return true
		case i < len(a) && a[i] == '*':
			// The star matches nothing more, or one more character that b[j] stands for.
			return walk(i+1, j) || (j < len(b) && walk(i, j+1))
		case j < len(b) && b[j] == '*':
			return walk(i, j+1) || (i < len(a) && walk(i+1, j))
		case i == len(a) || j == len(b):
			return false
		case a[i] == '?' || b[j] == '?' || a[i] == b[j]:
			return walk(i+1, j+1)
		}
		return false
	}
	return walk(0, 0)
}
