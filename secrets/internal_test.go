package secrets

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzUnquoteJSON checks the zeroable JSON string decoder against encoding/json.
func FuzzUnquoteJSON(f *testing.F) {
	for _, seed := range []string{`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e4\u20ac"`,
		`"\ud83d\ude00"`, `"\ud83d"`, `"\udc00x"`, `"\u12"`, `"bad\q"`, `"ctl` + "\x01" + `"`, `"ünï"`, `"a"b"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := UnquoteJSON(raw)
		var want string
		wantErr := json.Unmarshal(raw, &want)
		if !json.Valid(raw) || len(bytes.TrimSpace(raw)) != len(raw) || len(raw) == 0 || raw[0] != '"' {
			return // only JSON string literals without surrounding space are in scope
		}
		if wantErr != nil {
			if err == nil {
				t.Fatalf("UnquoteJSON(%q) = %q, encoding/json refuses it: %v", raw, string(got), wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("UnquoteJSON(%q) failed: %v; encoding/json gives %q", raw, err, want)
		}
		if string(got) != want {
			t.Fatalf("UnquoteJSON(%q) = %q, want %q", raw, string(got), want)
		}
	})
}

func TestUnquoteJSONRejectsMalformed(t *testing.T) {
	for _, in := range []string{``, `"`, `abc`, `"a"b"`, `"\q"`, `"\u12"`, `"tab` + "\t" + `"`, `"\`} {
		if _, err := UnquoteJSON([]byte(in)); err == nil {
			t.Errorf("UnquoteJSON(%q) accepted malformed input", in)
		}
	}
}

func TestCacheZeroesEvictedAndExpiredValues(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCache(time.Minute, 1, func() time.Time { return now })
	c.put("a", &Secret{Value: Value("first-secret")})
	held := c.entries["a"].Value.(*cacheEntry).secret.Value // the cache's own copy
	c.put("b", &Secret{Value: Value("second-secret")})      // evicts a
	if !allZero(held) {
		t.Fatalf("evicted value not zeroed: %q", []byte(held))
	}
	held = c.entries["b"].Value.(*cacheEntry).secret.Value
	now = now.Add(time.Hour)
	if c.get("b") != nil {
		t.Fatal("expired entry returned")
	}
	if !allZero(held) {
		t.Fatalf("expired value not zeroed: %q", []byte(held))
	}
	// get hands out a copy: zeroing it leaves the cached value intact.
	now = time.Unix(0, 0)
	c.put("c", &Secret{Value: Value("third")})
	got := c.get("c")
	got.Zero()
	if again := c.get("c"); again.Value.Reveal() != "third" {
		t.Fatalf("cached value damaged by a caller: %q", again.Value.Reveal())
	}
}

func TestFlightZeroesSharedOriginal(t *testing.T) {
	var g flightGroup
	f, leader := g.join("k")
	if !leader {
		t.Fatal("first join must lead")
	}
	f2, leader2 := g.join("k")
	if leader2 || f2 != f {
		t.Fatal("second join must follow the same flight")
	}
	orig := &Secret{Value: Value("shared-original")}
	held := orig.Value
	g.finish("k", f, orig, nil)
	a, _ := g.wait(t.Context(), f)
	if allZero(held) {
		t.Fatal("original zeroed while a holder remains")
	}
	b, _ := g.wait(t.Context(), f2)
	if !allZero(held) {
		t.Fatalf("original not zeroed after the last holder: %q", []byte(held))
	}
	if a.Value.Reveal() != "shared-original" || b.Value.Reveal() != "shared-original" {
		t.Fatal("copies wrong")
	}
	if _, leader := g.join("k"); !leader {
		t.Fatal("a finished flight must not be joined again")
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
