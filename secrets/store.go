// Package secrets reads data-source credentials from a customer's secret store and resolves the
// connection fields of a workflow input against them.
//
// A Store fetches one secret; one subpackage per backend implements it (aws, azure, gcp, env,
// custom). Resolve applies the documented field rules on top of any Store, and a Resolver adds
// deduplication of concurrent fetches and an optional bounded cache.
//
// Secret values are held as Value, whose formatting, JSON and slog forms are redacted, so a value
// that reaches a log line or an error by mistake prints as "[REDACTED]". Nothing in this package
// or its backends ever puts a value into an error message.
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Store fetches secrets from one configured secret store (one AWS region and credential set, one
// Key Vault, one GCP project's Secret Manager, the agent's environment, or one custom HTTP store).
//
// Implementations must be safe for concurrent use. Fetch must:
//   - return the current value of the secret named by ref.Path, or the version named by ref.Version
//     (and, for AWS only, the staging label ref.Stage) when set;
//   - return an *Error whose Kind says what went wrong (SecretNotFound, AccessDenied, AuthFailed,
//     DecryptionFailed, StoreUnavailable, Throttled, InvalidInput, PolicyDenied) and whose message
//     names the store and the reference but never a secret value, a credential or a raw provider
//     response body;
//   - stop when ctx is done, returning an error that wraps ctx.Err();
//   - not retry on its own beyond one attempt per call: the caller's retry policy and deadline
//     decide how often a store is asked.
//
// The caller owns the returned Secret and must call Zero when it no longer needs the value.
type Store interface {
	Fetch(ctx context.Context, ref Ref) (*Secret, error)
}

// BatchStore is a Store that can fetch several secrets in one call (AWS BatchGetSecretValue).
//
// FetchBatch returns one Result per ref, in the order of refs. A per-secret failure is reported
// in that Result's Err and does not fail the others; the returned error is non-nil only when the
// whole call failed, in which case the results are nil.
type BatchStore interface {
	Store
	FetchBatch(ctx context.Context, refs []Ref) ([]Result, error)
}

// PerFieldStore is a Store whose secrets are addressed one per field: the value of a connection
// field is itself the name of a secret (the environment store, where it names a variable).
type PerFieldStore interface {
	Store
	// Names reports whether value is the name of a secret this store may be asked for. A field
	// value that is not is a literal. Sensitive fields are always fetched, so the store's own
	// refusal explains why a name is not allowed.
	Names(value string) bool
}

// Ref names one secret in a store. Its fields are identifiers, never secret material, and may
// appear in errors, logs and workflow history — except when Hidden is set.
type Ref struct {
	// Path is the store-specific name of the secret: an ARN or name (aws), a secret URL or name
	// (azure), projects/P/secrets/S[/versions/V] (gcp), a variable name (env), or the secret_name
	// of a custom store.
	Path string `json:"path"`
	// Version selects a version: an AWS version id, a Key Vault version, a GCP version number or
	// alias, or the custom store's version parameter. Empty means the current version.
	Version string `json:"version,omitempty"`
	// Stage selects an AWS staging label such as AWSCURRENT or AWSPREVIOUS. Other stores refuse it.
	Stage string `json:"stage,omitempty"`
	// Hidden marks a Path that was given as the value of a sensitive field (a store whose
	// secrets are named one per field, such as env): it may be the password itself, typed by
	// mistake, so it is never shown until the store has proved it is a name. String, and so
	// every message, log line and audit event, show HiddenRef instead; MarshalJSON too.
	Hidden bool `json:"-"`
}

// HiddenRef is how a Hidden reference is shown.
const HiddenRef = "(not shown: the name given for a sensitive field)"

// String returns the reference as it is shown in messages: the path with any version or stage,
// or HiddenRef for a Hidden one.
func (r Ref) String() string {
	if r.Hidden {
		return HiddenRef
	}
	s := r.Path
	if r.Version != "" {
		s += "@" + r.Version
	}
	if r.Stage != "" {
		s += "#" + r.Stage
	}
	return s
}

// MarshalJSON writes the reference's fields, with HiddenRef as the path of a Hidden one.
func (r Ref) MarshalJSON() ([]byte, error) {
	type plain Ref // the same fields without this method
	if r.Hidden {
		r = Ref{Path: HiddenRef}
	}
	return json.Marshal(plain(r))
}

// key identifies the secret a reference names, Hidden or not: for caching and for collapsing
// concurrent fetches, never for display.
func (r Ref) key() string { return r.Path + "\x00" + r.Version + "\x00" + r.Stage }

// Shown returns the reference as a store that found the secret proved it: a name, no longer
// hidden.
func (r Ref) Shown() Ref {
	r.Hidden = false
	return r
}

// Secret is one fetched secret: its plaintext and non-secret metadata.
type Secret struct {
	// Value is the plaintext. Call Zero when done with it.
	Value Value
	// Version is the store's identifier of the version that was read (AWS VersionId, Key Vault
	// version, GCP version number, custom store version). It is not secret.
	Version string
	// Lease, for a dynamic secret (credentials the store made for this read and will revoke, such
	// as Vault's database secrets engine), says how long they live and how to end them. Such a
	// secret is never cached or shared: each read makes new credentials.
	Lease *DynamicLease
}

// DynamicLease is the store's lease on dynamic credentials. ID is the store's lease id (Vault's
// "database/creds/reader/AbCd..."): not secret, recorded in the audit trail. TTL is how long the
// credentials live unless renewed; Renewable says whether Renew may extend them.
type DynamicLease struct {
	ID        string
	TTL       time.Duration
	Renewable bool
}

// LeasingStore is a Store whose secrets may be dynamic (Secret.Lease set): it renews and revokes
// them. Renew asks for the lease to live increment longer and returns the TTL granted; Revoke
// ends it, the credentials with it (revoking a lease that is already gone is not an error).
type LeasingStore interface {
	Store
	Renew(ctx context.Context, leaseID string, increment time.Duration) (time.Duration, error)
	Revoke(ctx context.Context, leaseID string) error
}

// Zero overwrites the plaintext and drops it.
func (s *Secret) Zero() {
	if s == nil {
		return
	}
	s.Value.Zero()
	s.Value = nil
}

// Result is the outcome of fetching one secret of a batch.
type Result struct {
	Ref    Ref
	Secret *Secret
	Err    error
}

// redacted is what every printable form of a Value shows.
const redacted = "[REDACTED]"

// Value holds secret plaintext. Its String, GoString, Format, MarshalJSON, MarshalText and
// LogValue all print "[REDACTED]", so formatting or encoding a Value by mistake leaks nothing; use
// Reveal to get the bytes on purpose.
type Value []byte

// Reveal returns the plaintext as a string, for handing to a driver or SDK. The string is a copy
// that cannot be zeroed; keep it no longer than the call that needs it.
func (v Value) Reveal() string { return string(v) }

// Zero overwrites the plaintext with zeros.
func (v Value) Zero() { clear(v) }

// String implements fmt.Stringer.
func (v Value) String() string { return redacted }

// Format implements fmt.Formatter, so every verb (%v, %s, %x, %d, %#v, ...) prints the redaction.
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// GoString implements fmt.GoStringer.
func (v Value) GoString() string { return redacted }

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (v Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value { return slog.StringValue(redacted) }
