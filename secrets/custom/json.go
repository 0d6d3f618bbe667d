package custom

import (
	"unicode/utf16"
	"unicode/utf8"
)

// This file finds values in a JSON response without decoding it into Go strings, which could not
// be zeroed: lookup returns a sub-slice of the body, and unquote writes a JSON string into a new
// byte slice. Both expect input that json.Valid accepted, and neither panics on any other input.

// lookup returns the raw JSON value at a dot path in data. A segment selects a member of an object
// (the last one if a key repeats, as encoding/json does) or, when it is a decimal number, an
// element of an array.
func lookup(data []byte, path []string) ([]byte, bool) {
	i := skipSpace(data, 0)
	for _, seg := range path {
		if i >= len(data) {
			return nil, false
		}
		var ok bool
		switch data[i] {
		case '{':
			i, ok = member(data, i, seg)
		case '[':
			i, ok = element(data, i, seg)
		}
		if !ok {
			return nil, false
		}
	}
	end := skipValue(data, i)
	if end <= i || end > len(data) {
		return nil, false
	}
	return data[i:end], true
}

// member returns the start of the value of key in the object that starts at data[i].
func member(data []byte, i int, key string) (int, bool) {
	found, at := false, 0
	j := skipSpace(data, i+1)
	for j < len(data) && data[j] == '"' {
		kend := skipString(data, j)
		name, ok := unquote(data[j:kend])
		j = skipSpace(data, kend)
		if !ok || j >= len(data) || data[j] != ':' {
			return 0, false
		}
		j = skipSpace(data, j+1)
		if string(name) == key {
			found, at = true, j
		}
		j = skipSpace(data, skipValue(data, j))
		if j < len(data) && data[j] == ',' {
			j = skipSpace(data, j+1)
		}
	}
	return at, found
}

// element returns the start of element seg (a decimal index) of the array at data[i].
func element(data []byte, i int, seg string) (int, bool) {
	n, ok := index(seg)
	if !ok {
		return 0, false
	}
	j := skipSpace(data, i+1)
	for k := 0; j < len(data) && data[j] != ']'; k++ {
		if k == n {
			return j, true
		}
		j = skipSpace(data, skipValue(data, j))
		if j < len(data) && data[j] == ',' {
			j = skipSpace(data, j+1)
		}
	}
	return 0, false
}

// index parses an array index: 1 to 9 decimal digits.
func index(seg string) (int, bool) {
	if seg == "" || len(seg) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(seg) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at data[i].
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// skipValue returns the index just past the value that starts at data[i]. It always advances
// when i is in range.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = skipString(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i + 1
	for j < len(data) && !isDelim(data[j]) {
		j++
	}
	return j
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// unquote decodes the JSON string literal raw (quotes included) into a new slice. Bytes that need
// no escape are copied unchanged; a lone surrogate escape becomes U+FFFD, as encoding/json does.
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		if c == '"' || c < 0x20 {
			clear(out)
			return nil, false
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(in) {
			clear(out)
			return nil, false
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
			r, ok := hex4(in, i)
			if !ok {
				clear(out)
				return nil, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(in, i+2); ok && i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			clear(out)
			return nil, false
		}
	}
	return out, true
}

// hex4 reads four hex digits at in[i:].
func hex4(in []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
