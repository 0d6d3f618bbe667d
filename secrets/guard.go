package secrets

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// MinGuardLen is the shortest value a Guard looks for. Shorter values (a port, "true", a
// one-digit version) cannot be told apart from ordinary text: searching for them would refuse or
// redact innocent results, so they are neither searched for nor redacted. A password shorter
// than this is not protected by the Guard; every other rule still applies to it.
const MinGuardLen = 4

// Guard is a set of secret values to look for in what is about to leave the agent (an activity
// result, an error, a heartbeat, a log line, extracted text). It is the last line of defence
// behind the rule that nothing derived from a secret reaches such places: it cannot make a leak
// impossible (a value transformed on the way, say base64-encoded, or shorter than MinGuardLen,
// is not recognized), but it catches a value that arrives as it is.
//
// A Guard owns copies of the values it is given; Zero overwrites them. It is safe for
// concurrent use. The zero value is an empty Guard.
type Guard struct {
	mu     sync.Mutex
	values []guarded
}

// guarded is one value: a label that may be shown (a field name, never the value) and the
// forms it is searched in (as it is, and as it appears inside a JSON string).
type guarded struct {
	label string
	forms [][]byte
}

// Add puts a copy of v under label (a field name or a description, shown in messages). Values
// shorter than MinGuardLen are ignored.
func (g *Guard) Add(label string, v []byte) {
	if len(bytes.TrimSpace(v)) < MinGuardLen {
		return
	}
	forms := [][]byte{bytes.Clone(v)}
	for _, esc := range [][]byte{jsonEscaped(v, true), jsonEscaped(v, false)} {
		if !slices.ContainsFunc(forms, func(f []byte) bool { return bytes.Equal(f, esc) }) {
			forms = append(forms, esc)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.values = append(g.values, guarded{label: label, forms: forms})
}

// AddContent puts every value that v holds under label: v itself and, when v is a JSON object or
// array, each string, number and boolean inside it (a secret's whole content, for steps that
// must not return any part of it).
func (g *Guard) AddContent(label string, v Value) {
	g.Add(label, v)
	trimmed := bytes.TrimSpace(v)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return
	}
	walkLeaves(doc, func(s string) { g.Add(label, []byte(s)) })
}

func walkLeaves(doc any, fn func(string)) {
	switch x := doc.(type) {
	case map[string]any:
		for _, v := range x {
			walkLeaves(v, fn)
		}
	case []any:
		for _, v := range x {
			walkLeaves(v, fn)
		}
	case string:
		fn(x)
	case json.Number:
		fn(x.String())
	}
}

// Find reports whether b holds one of the values, and the label of the first one found.
func (g *Guard) Find(b []byte) (label string, found bool) {
	if g == nil {
		return "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.values {
		for _, f := range v.forms {
			if bytes.Contains(b, f) {
				return v.label, true
			}
		}
	}
	return "", false
}

// FindExcept is Find, ignoring a value that also occurs in except. except is text the caller
// supplied (an activity's input, its workflow id), which a result may repeat without revealing
// anything the caller did not know; searching it too would make the Guard an oracle, failing
// exactly when a caller's guess equals a secret.
func (g *Guard) FindExcept(b, except []byte) (label string, found bool) {
	if g == nil {
		return "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.values {
		in, given := false, false
		for _, f := range v.forms {
			in = in || bytes.Contains(b, f)
			given = given || bytes.Contains(except, f)
		}
		if in && !given {
			return v.label, true
		}
	}
	return "", false
}

// FindString is Find for a string.
func (g *Guard) FindString(s string) (label string, found bool) { return g.Find([]byte(s)) }

// Redacted is what Redact puts in place of a value.
const Redacted = redacted

// Redact returns s with every occurrence of a value replaced by "[REDACTED]", and how many it
// replaced. Longer values are replaced first, so a value that contains another is replaced whole.
func (g *Guard) Redact(s string) (string, int) {
	if g == nil || s == "" {
		return s, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, v := range g.byLength() {
		raw := string(v.forms[0])
		if c := strings.Count(s, raw); c > 0 {
			s = strings.ReplaceAll(s, raw, redacted)
			n += c
		}
	}
	return s, n
}

// byLength returns the values, longest first. The caller holds g.mu.
func (g *Guard) byLength() []guarded {
	out := append([]guarded(nil), g.values...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j].forms[0]) > len(out[j-1].forms[0]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Matcher is a read-only view of a Guard's values, for checking many strings quickly (every
// string of every extracted entity) without taking the Guard's lock for each. It shares the
// Guard's memory: do not use it after the Guard's Zero.
type Matcher struct{ values [][]byte }

// Matcher returns a view of the values held now.
func (g *Guard) Matcher() Matcher {
	if g == nil {
		return Matcher{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := Matcher{values: make([][]byte, len(g.values))}
	for i, v := range g.values {
		m.values[i] = v.forms[0]
	}
	return m
}

// Empty reports whether the view holds no value.
func (m Matcher) Empty() bool { return len(m.values) == 0 }

// In reports whether s holds one of the values. It does not allocate.
func (m Matcher) In(s string) bool {
	if len(s) == 0 {
		return false
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	for _, v := range m.values {
		if bytes.Contains(b, v) {
			return true
		}
	}
	return false
}

// Len returns the number of values held.
func (g *Guard) Len() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.values)
}

// Zero overwrites every value and empties the Guard.
func (g *Guard) Zero() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.values {
		for _, f := range v.forms {
			clear(f)
		}
	}
	g.values = nil
}

// jsonEscaped returns v as it appears between the quotes of a JSON string written by
// encoding/json, with <, > and & escaped (json.Marshal) or not (an Encoder with SetEscapeHTML
// false, as the output's).
func jsonEscaped(v []byte, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(string(v)); err != nil || buf.Len() < 3 {
		return bytes.Clone(v)
	}
	b := buf.Bytes()
	return bytes.Clone(b[1 : len(b)-2]) // without the quotes and the newline
}

// Digest returns HMAC-SHA256, under key, of the values held now (sorted, so the order they were
// added in does not matter): two Guards with the same values give the same digest. It is for
// comparing the values of two runs inside one process, with a key that never leaves it; a
// digest kept where others can read it, or under a known key, would let them test guesses.
func (g *Guard) Digest(key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	if g == nil {
		return mac.Sum(nil)
	}
	g.mu.Lock()
	vals := make([][]byte, len(g.values))
	for i, v := range g.values {
		vals[i] = v.forms[0]
	}
	slices.SortFunc(vals, bytes.Compare)
	for _, v := range vals {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		mac.Write(n[:])
		mac.Write(v)
	}
	g.mu.Unlock()
	return mac.Sum(nil)
}
