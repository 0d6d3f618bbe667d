package secrets

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

var errBadJSONString = errors.New("not a valid JSON string")

// UnquoteJSON decodes a JSON string literal into a new Value, exactly as encoding/json would
// (invalid UTF-8 and lone surrogates become U+FFFD). encoding/json decodes into a Go string,
// which cannot be zeroed afterwards; this writes only into a byte slice the caller owns.
func UnquoteJSON(raw []byte) (Value, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, errBadJSONString
	}
	in := raw[1 : len(raw)-1]
	out := make(Value, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '"' || c < 0x20:
			out.Zero()
			return nil, errBadJSONString
		case c >= utf8.RuneSelf:
			// Invalid UTF-8 becomes U+FFFD, as encoding/json decodes it.
			r, n := utf8.DecodeRune(in[i:])
			out = utf8.AppendRune(out, r)
			i += n
			continue
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(in) {
			out.Zero()
			return nil, errBadJSONString
		}
		esc := in[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := decodeUnicodeEscape(in[i-2:])
			if n == 0 {
				out.Zero()
				return nil, errBadJSONString
			}
			out = utf8.AppendRune(out, r)
			i += n - 2
		default:
			out.Zero()
			return nil, errBadJSONString
		}
	}
	return out, nil
}

// decodeUnicodeEscape decodes `\uXXXX`, or a surrogate pair `\uXXXX\uXXXX`, at the start of s.
// It returns the rune and the bytes consumed, or 0 consumed if s does not start with one.
// Lone surrogates decode to U+FFFD, as encoding/json does.
func decodeUnicodeEscape(s []byte) (rune, int) {
	r1, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if !utf16.IsSurrogate(r1) {
		return r1, 6
	}
	if r2, ok := hex4(s[6:]); ok {
		if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
			return r, 12
		}
	}
	return utf8.RuneError, 6
}

// hex4 reads `\uXXXX` at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
