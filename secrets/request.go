package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// Field is one connection field of a workflow input, as the user wrote it.
type Field struct {
	// Name is the connector's name for the field, such as "host" or "password".
	Name string `json:"name"`
	// Value is the key of a secret, the name of a secret, or a literal (see Resolve).
	Value string `json:"value"`
	// Secret, when set, is the secret this field reads instead of the request's Secret: it lets
	// one resolution draw on several secrets (for example a sink's credentials kept apart).
	Secret *Ref `json:"secret,omitempty"`
	// Sensitive is declared by the connector, never by the input: the field must come from a
	// secret, because input typed into the Web UI or the CLI is stored in workflow history.
	Sensitive bool `json:"sensitive,omitempty"`
	// Explicit marks a field that names its own secret (Secret) on purpose: Value is then a key
	// the secret must hold (empty: the whole secret, which must be a single value), never a
	// literal to fall back to.
	Explicit bool `json:"explicit,omitempty"`
}

// Request is one resolution: a set of fields and the secret they may name.
type Request struct {
	// Secret is the input's secretPath (with version), or nil when the input names none. A
	// PerFieldStore ignores it: each field names its own secret.
	Secret *Ref
	Fields []Field
	// AllowSensitiveLiterals lets a sensitive field hold a literal. It is an agent-side policy for
	// local development only; workflow input can never set it.
	AllowSensitiveLiterals bool
	// Guard, when set, receives the values of the sensitive fields once they are resolved, so
	// the caller can check that nothing it returns holds them (see Guard).
	Guard *Guard
	// Fresh reads every secret from its store, never from the cache (whose copy may be the
	// one a source just refused); what is read still refreshes the cache.
	Fresh bool
}

// Validate reports every structural problem of the request at once, as one InvalidInput error.
func (r Request) Validate() error {
	var problems []string
	seen := make(map[string]bool, len(r.Fields))
	if r.Secret != nil && strings.TrimSpace(r.Secret.Path) == "" {
		problems = append(problems, "the secret path is empty: set secretPath, or leave the secret out to use literals only")
	}
	for i, f := range r.Fields {
		switch {
		case strings.TrimSpace(f.Name) == "":
			problems = append(problems, fmt.Sprintf("field %d has no name", i+1))
		case seen[f.Name]:
			problems = append(problems, fmt.Sprintf("field %q appears more than once", f.Name))
		}
		seen[f.Name] = true
		if f.Secret != nil && strings.TrimSpace(f.Secret.Path) == "" {
			problems = append(problems, fmt.Sprintf("field %q names a secret with an empty path", f.Name))
		}
		if f.Explicit && f.Secret == nil {
			problems = append(problems, fmt.Sprintf("field %q is explicit but names no secret", f.Name))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &Error{Kind: InvalidInput, Msg: strings.Join(problems, "; ")}
}

// Resolved is one field after resolution.
type Resolved struct {
	Field string
	// Value is the plaintext (or the literal).
	Value Value
	// FromSecret reports whether Value came from a secret rather than a literal.
	FromSecret bool
	// Ref is the secret the value came from; zero for a literal.
	Ref Ref
	// Key is the key of a JSON-object secret the value came from; empty for a whole secret.
	Key string
	// Sensitive is the field's declaration (see Field.Sensitive).
	Sensitive bool
}

// SecretVersion records the version of one secret read during a resolution. Not secret.
type SecretVersion struct {
	Ref     Ref    `json:"ref"`
	Version string `json:"version,omitempty"`
}

// Resolution is the outcome of resolving a Request: each field's value and the versions read.
// The caller must call Zero when done with it.
type Resolution struct {
	Fields   []Resolved
	Versions []SecretVersion
	// Leases are the leases of the dynamic secrets read (Secret.Lease), in the order of their
	// secrets: the caller owns them and must end them (LeasingStore.Revoke) when the credentials
	// are no longer needed. A failed Resolve has already revoked the ones it made.
	Leases []ResolvedLease
}

// ResolvedLease is the lease of one dynamic secret a resolution read.
type ResolvedLease struct {
	Ref   Ref
	Lease DynamicLease
}

// Value returns the value of the named field.
func (r *Resolution) Value(field string) (Value, bool) {
	for _, f := range r.Fields {
		if f.Field == field {
			return f.Value, true
		}
	}
	return nil, false
}

// FieldNames returns the names of the resolved fields, in request order.
func (r *Resolution) FieldNames() []string {
	names := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		names[i] = f.Field
	}
	return names
}

// Zero overwrites every value.
func (r *Resolution) Zero() {
	if r == nil {
		return
	}
	for i := range r.Fields {
		r.Fields[i].Value.Zero()
		r.Fields[i].Value = nil
	}
}

// joinErrors combines the errors of one resolution. Final errors come first, so KindOf reports a
// final kind whenever retrying could not fix every problem; errors.Is still finds every kind.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	ordered := make([]error, 0, len(errs))
	for _, err := range errs {
		if !Retryable(err) {
			ordered = append(ordered, err)
		}
	}
	for _, err := range errs {
		if Retryable(err) {
			ordered = append(ordered, err)
		}
	}
	return errors.Join(ordered...)
}
