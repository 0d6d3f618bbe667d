package codec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// newKey returns 32 random bytes and their standard base64.
func newKey(t testing.TB) ([]byte, string) {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k, base64.StdEncoding.EncodeToString(k)
}

// mustKeys parses a spec or fails the test.
func mustKeys(t testing.TB, spec string) *Keys {
	t.Helper()
	k, err := ParseKeys(spec)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return k
}

// assertNoKeyMaterial fails if s contains any of the keys, raw or in any base64 form.
func assertNoKeyMaterial(t *testing.T, what, s string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		forms := []string{
			string(k),
			base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k),
			base64.URLEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
			fmt.Sprintf("%x", k),
		}
		for _, f := range forms {
			if len(f) >= 8 && strings.Contains(s, f[:8]) {
				t.Fatalf("%s contains key material: %q", what, s)
			}
		}
	}
}

func TestParseKeys(t *testing.T) {
	raw1, k1 := newKey(t)
	raw2, k2 := newKey(t)
	url1 := base64.RawURLEncoding.EncodeToString(raw1)
	tests := []struct {
		name   string
		spec   string
		ids    []string
		errHas string
	}{
		{name: "one", spec: "k1:" + k1, ids: []string{"k1"}},
		{name: "two, active first", spec: "new:" + k2 + ",old:" + k1, ids: []string{"new", "old"}},
		{name: "spaces and trailing comma", spec: "  a : " + k1 + " ,\tb:" + k2 + ",", ids: []string{"a", "b"}},
		{name: "url-safe unpadded base64", spec: "u:" + url1, ids: []string{"u"}},
		{name: "id charset", spec: "Key_2024-01.v2:" + k1, ids: []string{"Key_2024-01.v2"}},
		{name: "64-char id", spec: strings.Repeat("i", 64) + ":" + k1, ids: []string{strings.Repeat("i", 64)}},
		{name: "empty", spec: "", errHas: "no keys"},
		{name: "only commas", spec: " , ,", errHas: "no keys"},
		{name: "no colon", spec: k1, errHas: `found no ":"`},
		{name: "empty id", spec: ":" + k1, errHas: "empty key id"},
		{name: "id too long", spec: strings.Repeat("i", 65) + ":" + k1, errHas: "65 characters"},
		{name: "id with space", spec: "my key:" + k1, errHas: "outside [A-Za-z0-9._-]"},
		{name: "id with slash", spec: "a/b:" + k1, errHas: "outside [A-Za-z0-9._-]"},
		{name: "duplicate id", spec: "a:" + k1 + ",a:" + k2, errHas: `"a" is listed twice`},
		{name: "empty key", spec: "a:", errHas: "key is empty"},
		{name: "not base64", spec: "a:" + k1[:20] + "!!" + k1[22:], errHas: "not valid base64"},
		{name: "16 bytes", spec: "a:" + base64.StdEncoding.EncodeToString(raw1[:16]), errHas: "16 bytes"},
		{name: "31 bytes", spec: "a:" + base64.StdEncoding.EncodeToString(raw1[:31]), errHas: "31 bytes"},
		{name: "33 bytes", spec: "a:" + base64.StdEncoding.EncodeToString(append(raw1[:32:32], 7)), errHas: "33 bytes"},
		{name: "64 bytes", spec: "a:" + base64.StdEncoding.EncodeToString(append(raw1[:32:32], raw2...)), errHas: "64 bytes"},
		{name: "swapped id and key", spec: url1 + ":k1", errHas: "looks like a base64 key"},
		{name: "second entry bad", spec: "a:" + k1 + ",b:" + k2[:10], errHas: "entry 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.spec)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tt.errHas)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %q does not contain %q", err, tt.errHas)
				}
				if !strings.Contains(err.Error(), EnvKeys) {
					t.Fatalf("error %q does not name %s", err, EnvKeys)
				}
				assertNoKeyMaterial(t, "error", err.Error(), raw1, raw2)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(keys.IDs(), ","); got != strings.Join(tt.ids, ",") {
				t.Fatalf("ids = %s, want %s", got, strings.Join(tt.ids, ","))
			}
			if keys.ActiveID() != tt.ids[0] {
				t.Fatalf("active = %s, want %s", keys.ActiveID(), tt.ids[0])
			}
		})
	}
}

// TestKeysNeverPrintMaterial formats a Keys every way a log line or panic might.
func TestKeysNeverPrintMaterial(t *testing.T) {
	raw1, k1 := newKey(t)
	raw2, k2 := newKey(t)
	keys := mustKeys(t, "new:"+k2+",old:"+k1)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		s := fmt.Sprintf(format, keys)
		assertNoKeyMaterial(t, format, s, raw1, raw2)
		if !strings.Contains(s, "new") || !strings.Contains(s, "old") {
			t.Fatalf("%s of Keys = %q, want the ids", format, s)
		}
	}
	// Also through a struct that holds the keys, as a settings dump would.
	s := fmt.Sprintf("%+v %#v", struct{ K *Keys }{keys}, struct{ K *Keys }{keys})
	assertNoKeyMaterial(t, "struct dump", s, raw1, raw2)
}

func writeKeysFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "codec.keys")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKeysFile(t *testing.T) {
	raw1, k1 := newKey(t)
	raw2, k2 := newKey(t)
	content := "# codec keys, the active one first\n\n  new:" + k2 + "  \n# retired 2025-01\nold:" + k1 + "\n"

	t.Run("0600", func(t *testing.T) {
		keys, err := LoadKeysFile(writeKeysFile(t, content, 0o600))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(keys.IDs(), ","); got != "new,old" {
			t.Fatalf("ids = %s", got)
		}
	})
	t.Run("0400", func(t *testing.T) {
		if _, err := LoadKeysFile(writeKeysFile(t, content, 0o400)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad line named", func(t *testing.T) {
		_, err := LoadKeysFile(writeKeysFile(t, "# x\nnew:"+k2+"\nold:"+k1[:30]+"\n", 0o600))
		if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), `"old"`) {
			t.Fatalf("err = %v, want line 3 and the id", err)
		}
		assertNoKeyMaterial(t, "error", err.Error(), raw1, raw2)
	})
	t.Run("only comments", func(t *testing.T) {
		_, err := LoadKeysFile(writeKeysFile(t, "# nothing\n\n", 0o600))
		if err == nil || !strings.Contains(err.Error(), "no keys") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := LoadKeysFile(filepath.Join(t.TempDir(), "absent"))
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want not exist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := LoadKeysFile(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})

	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes are not checked on Windows")
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o444, 0o666} {
		t.Run(fmt.Sprintf("refuses %04o", mode), func(t *testing.T) {
			_, err := LoadKeysFile(writeKeysFile(t, content, mode))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range []string{fmt.Sprintf("%04o", mode), "0600 or 0400", "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not say %q", err, want)
				}
			}
			assertNoKeyMaterial(t, "error", err.Error(), raw1, raw2)
		})
	}
}
