package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Resolve resolves every field of req against src and returns their values.
//
// The rules, as the product documents them ("for each field, enter either the name of a secret or
// the actual value"):
//   - A store with secret paths (aws, azure, gcp, custom): a field reads req.Secret, or its own
//     Field.Secret. When that secret's value is a JSON object, a field value that is one of its
//     keys is replaced by that key's value (strings as they are, other JSON as its text); any
//     other value is a literal. When the secret is a single string, a field whose value is the
//     secret's name (its path, or the last segment of the path) takes the whole value, and so
//     does a field with its own Field.Secret and an empty value.
//   - A PerFieldStore (env): a field value that the store Names is the name of a secret (a
//     variable) and is replaced by its value; a missing one is SecretNotFound, never "".
//   - A sensitive field must come from a secret. A literal there is InvalidInput (or, for a
//     key the secret lacks, SecretKeyNotFound) unless req.AllowSensitiveLiterals.
//   - Each distinct secret is fetched once, however many fields use it; with a BatchStore,
//     several secrets go in one call.
//
// Every problem is reported at once. Errors name fields, secrets and keys, never values. The
// caller must Zero the Resolution.
func (r *Resolver) Resolve(ctx context.Context, src Source, req Request) (*Resolution, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	perField, _ := src.Store.(PerFieldStore)

	// Decide, for each field, which secret (if any) it reads.
	refs := make([]*Ref, len(req.Fields))
	var problems []error
	var distinct []Ref
	for i, f := range req.Fields {
		var ref *Ref
		switch {
		case f.Secret != nil:
			ref = f.Secret
		case perField != nil:
			if f.Sensitive || perField.Names(f.Value) {
				// A value given for a sensitive field may be the secret itself, typed by
				// mistake: it stays hidden until the store proves it is a name.
				ref = &Ref{Path: f.Value, Hidden: f.Sensitive}
			}
		default:
			ref = req.Secret
		}
		if perField != nil && f.Secret == nil && f.Sensitive && f.Value == "" {
			problems = append(problems, &Error{Kind: InvalidInput, Store: src.Name, Field: f.Name,
				Msg: "a sensitive field must name the environment variable that holds it"})
			continue
		}
		if ref == nil && f.Sensitive && !req.AllowSensitiveLiterals {
			problems = append(problems, sensitiveLiteral(src.Name, f.Name))
			continue
		}
		refs[i] = ref
		if ref != nil && !slices.Contains(distinct, *ref) {
			distinct = append(distinct, *ref)
		}
	}
	if len(problems) > 0 {
		return nil, joinErrors(problems)
	}

	got, fetchErrs := r.fetchAll(ctx, src, distinct, req.Fresh)
	defer func() {
		for _, s := range got {
			s.Zero()
		}
	}()

	res := &Resolution{}
	// Dynamic credentials made for this resolution are revoked if it fails: nobody else will.
	ok := false
	defer func() {
		if !ok {
			revokeAll(ctx, src, res.Leases)
		}
	}()
	for _, ref := range distinct {
		s, found := got[ref]
		if !found {
			problems = append(problems, fieldsOf(fetchErrs[ref], ref, refs, req.Fields))
			continue
		}
		// A hidden name that the store found is a name after all: it may be shown from here on.
		res.Versions = append(res.Versions, SecretVersion{Ref: ref.Shown(), Version: s.Version})
		if s.Lease != nil {
			res.Leases = append(res.Leases, ResolvedLease{Ref: ref.Shown(), Lease: *s.Lease})
		}
	}
	decoded := make(map[Ref]*decodedSecret, len(got))
	defer func() {
		for _, d := range decoded {
			d.zero()
		}
	}()
	for i, f := range req.Fields {
		ref := refs[i]
		if ref == nil {
			res.Fields = append(res.Fields, Resolved{Field: f.Name, Value: Value(f.Value), Sensitive: f.Sensitive})
			continue
		}
		s, ok := got[*ref]
		if !ok {
			continue // the fetch error is already reported once for the secret
		}
		if perField != nil && !f.Explicit {
			res.Fields = append(res.Fields, Resolved{Field: f.Name, Value: append(Value(nil), s.Value...), FromSecret: true, Ref: ref.Shown(), Sensitive: f.Sensitive})
			continue
		}
		d := decoded[*ref]
		if d == nil {
			d = decodeSecret(s.Value)
			decoded[*ref] = d
		}
		v, err := pickField(src.Name, f, *ref, d, req.AllowSensitiveLiterals)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		res.Fields = append(res.Fields, v)
	}
	if len(problems) > 0 {
		res.Zero()
		return nil, joinErrors(problems)
	}
	if req.Guard != nil {
		for _, f := range res.Fields {
			if f.Sensitive {
				req.Guard.Add(f.Field, f.Value)
			}
		}
	}
	ok = true
	return res, nil
}

// revokeAll ends dynamic leases a failed resolution made, best effort, within 10 s whatever
// ctx's state (the resolution may have failed because ctx ended).
func revokeAll(ctx context.Context, src Source, leases []ResolvedLease) {
	ls, isLeasing := src.Store.(LeasingStore)
	if !isLeasing || len(leases) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, l := range leases {
		_ = ls.Revoke(rctx, l.Lease.ID)
	}
}

// checkVersion refuses a version id that equals or contains a value the secret itself holds: a
// version comes from the store's metadata (or a response path the agent's operator configured),
// and one that repeats part of the secret would carry it into results, the audit and logs. The
// Resolver applies it to every fetched secret before logging, caching or returning it. Values
// shorter than MinGuardLen are not compared (see Guard).
func checkVersion(store string, ref Ref, s *Secret) error {
	if s.Version == "" {
		return nil
	}
	var g Guard
	defer g.Zero()
	g.AddContent("", s.Value)
	if _, found := g.FindString(s.Version); !found {
		return nil
	}
	return &Error{Kind: InvalidInput, Store: store, Ref: ref.String(),
		Msg: "the version id the store reported equals or contains part of the secret's own value, so the agent will not record it: the version must come from the store's metadata; check the store's version header, or the version path configured on the agent"}
}

// fieldsOf names, in a fetch error that names no field, the fields that read ref, so a message
// about a hidden name still says which field it was given for.
func fieldsOf(err error, ref Ref, refs []*Ref, fields []Field) error {
	var se *Error
	if !ref.Hidden || !errors.As(err, &se) || se.Field != "" {
		return err
	}
	var names []string
	for i, r := range refs {
		if r != nil && *r == ref {
			names = append(names, fields[i].Name)
		}
	}
	c := *se
	c.Field = strings.Join(names, ", ")
	return &c
}

func sensitiveLiteral(store, field string) error {
	return &Error{Kind: InvalidInput, Store: store, Field: field,
		Msg: "is sensitive and must come from a secret, not a literal: input typed into the Web UI or the CLI is kept in workflow history in the clear; put the value in the secret store and enter its key or name here"}
}

// decodedSecret is a secret's value seen as a JSON object (keys to raw JSON values) or, when it
// is not one, as a single string.
type decodedSecret struct {
	object map[string]json.RawMessage // nil for a single-string secret
	whole  Value
}

func decodeSecret(v Value) *decodedSecret {
	trimmed := bytes.TrimSpace(v)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(trimmed, &obj) == nil {
			return &decodedSecret{object: obj}
		}
	}
	return &decodedSecret{whole: append(Value(nil), v...)}
}

func (d *decodedSecret) zero() {
	for _, raw := range d.object {
		clear(raw)
	}
	d.whole.Zero()
}

// keys returns the object's keys, sorted, for messages. Keys are names, not secret material.
func (d *decodedSecret) keys() []string {
	keys := make([]string, 0, len(d.object))
	for k := range d.object {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pickField applies the key-or-literal rule to one field reading the secret ref.
func pickField(store string, f Field, ref Ref, d *decodedSecret, allowLiterals bool) (Resolved, error) {
	literal := Resolved{Field: f.Name, Value: Value(f.Value), Sensitive: f.Sensitive}
	fromSecret := func(v Value, key string) Resolved {
		return Resolved{Field: f.Name, Value: v, FromSecret: true, Ref: ref, Key: key, Sensitive: f.Sensitive}
	}
	if d.object != nil {
		if raw, ok := d.object[f.Value]; ok {
			v, err := jsonFieldValue(raw)
			if err != nil {
				return Resolved{}, &Error{Kind: InvalidInput, Store: store, Ref: ref.String(), Field: f.Name,
					Msg: fmt.Sprintf("key %q does not hold a valid JSON value", f.Value)}
			}
			return fromSecret(v, f.Value), nil
		}
		switch {
		case f.Value == "" && f.Secret != nil:
			return Resolved{}, &Error{Kind: InvalidInput, Store: store, Ref: ref.String(), Field: f.Name,
				Msg: fmt.Sprintf("the secret is a JSON object: set the field to one of its keys (%s)", keyList(d.keys()))}
		case f.Explicit && f.Sensitive:
			return Resolved{}, &Error{Kind: SecretKeyNotFound, Store: store, Ref: ref.String(), Field: f.Name,
				Msg: fmt.Sprintf("the secret has no key named by this field's key (not shown: it is a sensitive field's); the keys it holds are %s", keyList(d.keys()))}
		case f.Explicit:
			return Resolved{}, &Error{Kind: SecretKeyNotFound, Store: store, Ref: ref.String(), Field: f.Name,
				Msg: fmt.Sprintf("the secret has no key %q; the keys it holds are %s", f.Value, keyList(d.keys()))}
		case f.Sensitive && !allowLiterals:
			// Never repeat the value: it may be the password itself, typed by mistake.
			return Resolved{}, &Error{Kind: SecretKeyNotFound, Store: store, Ref: ref.String(), Field: f.Name,
				Msg: fmt.Sprintf("the secret has no key named by this field's value (not shown: a value given for a sensitive field is never repeated); the keys it holds are %s: set the field to one of them or add the key to the secret", keyList(d.keys()))}
		}
		return literal, nil
	}
	if (f.Value == "" && f.Secret != nil) || (!f.Explicit && namesSecret(f.Value, ref.Path)) {
		return fromSecret(append(Value(nil), d.whole...), ""), nil
	}
	if f.Explicit {
		return Resolved{}, &Error{Kind: SecretKeyNotFound, Store: store, Ref: ref.String(), Field: f.Name,
			Msg: "the secret holds a single value, not a JSON object with keys: leave the field's key out to use the whole value, or store a JSON object"}
	}
	if f.Sensitive && !allowLiterals {
		return Resolved{}, &Error{Kind: SecretKeyNotFound, Store: store, Ref: ref.String(), Field: f.Name,
			Msg: fmt.Sprintf("the secret holds a single value, not a JSON object with keys: set the field to the secret's name %q to use the whole value, or store a JSON object", lastSegment(ref.Path))}
	}
	return literal, nil
}

// namesSecret reports whether a field value names the secret at path: the whole path or its last
// segment ("prod/db/password" is named by "password", an ARN by its secret name).
func namesSecret(value, path string) bool {
	return value != "" && (value == path || value == lastSegment(path))
}

func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	if i := strings.LastIndexAny(path, "/:"); i >= 0 {
		return path[i+1:]
	}
	return path
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	const max = 20
	quoted := make([]string, 0, min(len(keys), max))
	for _, k := range keys[:min(len(keys), max)] {
		quoted = append(quoted, fmt.Sprintf("%q", k))
	}
	s := strings.Join(quoted, ", ")
	if len(keys) > max {
		s += fmt.Sprintf(" and %d more", len(keys)-max)
	}
	return s
}

// jsonFieldValue turns one JSON value of a secret object into a field value: a string as its
// characters, anything else (number, bool, object, array) as its compact JSON text.
func jsonFieldValue(raw json.RawMessage) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		return UnquoteJSON(raw)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	v := append(Value(nil), b.Bytes()...)
	clear(b.Bytes())
	return v, nil
}
