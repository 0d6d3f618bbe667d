package codec

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// EnvKeys is the environment variable that holds the codec keys in the form ParseKeys reads.
const EnvKeys = "SECURE_AGENT_CODEC_KEYS"

// KeySize is the size of every codec key: AES-256.
const KeySize = 32

// maxKeyIDLen is the longest key id; ids are [A-Za-z0-9._-]{1,64}.
const maxKeyIDLen = 64

// maxKeysFileSize bounds what LoadKeysFile reads.
const maxKeysFileSize = 1 << 20

// Keys is an ordered set of AES-256 keys, each with an id. The first key is the active key: it
// encrypts every new payload. Every key decrypts, so a payload written under an older key stays
// readable while that key is listed (key rotation: put the new key first, keep the old ones after
// it).
//
// Nonces are random (96 bits), so one key should encrypt well under 2^32 payloads: rotate long
// before that.
//
// A Keys value never shows key material: String, GoString and the errors of this package print key
// ids only. Only ParseKeys and LoadKeysFile make a usable Keys; it is safe for concurrent use.
type Keys struct {
	ids   []string               // in the order given; ids[0] is the active key
	aeads map[string]cipher.AEAD // AES-256-GCM per key id
}

// ActiveID returns the id of the key that encrypts ("" for an empty Keys).
func (k *Keys) ActiveID() string {
	if k == nil || len(k.ids) == 0 {
		return ""
	}
	return k.ids[0]
}

// IDs returns the key ids, the active one first.
func (k *Keys) IDs() []string { return append([]string(nil), k.ids...) }

// String describes the set by its ids only.
func (k *Keys) String() string {
	if k == nil || len(k.ids) == 0 {
		return "codec.Keys{}"
	}
	return fmt.Sprintf("codec.Keys{active: %s, ids: [%s]}", k.ids[0], strings.Join(k.ids, " "))
}

// GoString is String, so %#v does not dump the ciphers either.
func (k *Keys) GoString() string { return k.String() }

// aead returns the cipher for a key id.
func (k *Keys) aead(id string) (cipher.AEAD, bool) {
	a, ok := k.aeads[id]
	return a, ok
}

// ParseKeys reads keys in the form of SECURE_AGENT_CODEC_KEYS: comma-separated entries
// "id:<base64 of exactly 32 bytes>", the active (encrypting) key first. Ids are 1 to 64 characters
// of [A-Za-z0-9._-] and unique. Base64 may be standard or URL-safe, padded or not. Spaces around
// entries are ignored, and so are empty entries (a trailing comma). An id that is itself base64 of
// 32 bytes (43 such characters) is refused as a likely swapped entry. Errors name an entry by its
// position and id, never by its key.
func ParseKeys(spec string) (*Keys, error) {
	b := newKeysBuilder()
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := b.add(entry); err != nil {
			return nil, fmt.Errorf("codec keys (%s): entry %d: %w", EnvKeys, i+1, err)
		}
	}
	keys, err := b.keys()
	if err != nil {
		return nil, fmt.Errorf("codec keys (%s): %w", EnvKeys, err)
	}
	return keys, nil
}

// LoadKeysFile reads keys from a file: one "id:<base64 of exactly 32 bytes>" entry per line, the
// active (encrypting) key first; blank lines and lines starting with "#" are ignored. Entries follow
// the rules of ParseKeys.
//
// The file must be a regular file that neither group nor others may read or write: mode 0600 or
// 0400 (chmod 600 FILE). Any other file is refused before it is read, with an error that says so.
// On Kubernetes, Secret files are owned by root: a 0400 file is unreadable to a non-root agent, and
// the fsGroup that would fix that adds group read, which this refuses. Pass the keys as
// SECURE_AGENT_CODEC_KEYS from the Secret instead (the Helm chart does), unless the platform gives
// the agent's user a 0400 or 0600 file.
// On Windows, where Unix modes do not apply, the mode is not checked. Errors name the file and the
// line, never a key.
func LoadKeysFile(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("codec keys file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("codec keys file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("codec keys file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("codec keys file %s: mode %04o lets group or others access it; "+
			"keys files must be 0600 or 0400 (run: chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("codec keys file %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeysFileSize {
		return nil, fmt.Errorf("codec keys file %s: larger than %d bytes", path, maxKeysFileSize)
	}
	b := newKeysBuilder()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeysFileSize)
	for line := 1; sc.Scan(); line++ {
		entry := strings.TrimSpace(sc.Text())
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		if err := b.add(entry); err != nil {
			return nil, fmt.Errorf("codec keys file %s: line %d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("codec keys file %s: %w", path, err)
	}
	keys, err := b.keys()
	if err != nil {
		return nil, fmt.Errorf("codec keys file %s: %w", path, err)
	}
	return keys, nil
}

// keysBuilder collects entries for ParseKeys and LoadKeysFile.
type keysBuilder struct{ k *Keys }

func newKeysBuilder() *keysBuilder {
	return &keysBuilder{k: &Keys{aeads: map[string]cipher.AEAD{}}}
}

// add parses one "id:base64" entry. Its errors never contain the key part, nor an id that is not
// a valid id (it could be a misplaced key).
func (b *keysBuilder) add(entry string) error {
	id, encoded, ok := strings.Cut(entry, ":")
	if !ok {
		return errors.New(`want "id:<base64 key>", found no ":"`)
	}
	id, encoded = strings.TrimSpace(id), strings.TrimSpace(encoded)
	if err := checkKeyID(id); err != nil {
		return err
	}
	if key, err := decodeKey(id); err == nil {
		clear(key)
		return errors.New(`the id looks like a base64 key; the form is "id:<base64 key>"`)
	}
	if _, dup := b.k.aeads[id]; dup {
		return fmt.Errorf("key id %q is listed twice", id)
	}
	if encoded == "" {
		return fmt.Errorf("key id %q: the key is empty", id)
	}
	key, err := decodeKey(encoded)
	if err != nil {
		return fmt.Errorf("key id %q: %w", id, err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable with 32 bytes; the message carries no key
		return fmt.Errorf("key id %q: %w", id, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("key id %q: %w", id, err)
	}
	b.k.ids = append(b.k.ids, id)
	b.k.aeads[id] = gcm
	return nil
}

func (b *keysBuilder) keys() (*Keys, error) {
	if len(b.k.ids) == 0 {
		return nil, errors.New(`no keys: want at least one "id:<base64 of 32 random bytes>" (generate one with: openssl rand -base64 32)`)
	}
	return b.k, nil
}

// checkKeyID enforces [A-Za-z0-9._-]{1,64}. An invalid id is described, not quoted.
func checkKeyID(id string) error {
	if id == "" {
		return errors.New(`empty key id; the form is "id:<base64 key>"`)
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("key id is %d characters long, at most %d are allowed", len(id), maxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !isKeyIDByte(id[i]) {
			return fmt.Errorf("key id has a character outside [A-Za-z0-9._-] at position %d", i+1)
		}
	}
	return nil
}

// validKeyID reports whether id is a well-formed key id (safe to print).
func validKeyID(id string) bool { return checkKeyID(id) == nil }

func isKeyIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// decodeKey decodes base64 (standard or URL-safe, padded or not) of exactly KeySize bytes. Its
// errors say what is wrong without quoting the input.
func decodeKey(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	key, err := enc.DecodeString(s)
	if err != nil {
		return nil, errors.New("the key is not valid base64")
	}
	if len(key) != KeySize {
		clear(key)
		return nil, fmt.Errorf("the key decodes to %d bytes, AES-256 needs exactly %d (generate one with: openssl rand -base64 32)", len(key), KeySize)
	}
	return key, nil
}
