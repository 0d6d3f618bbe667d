package custom

import "github.com/secure-agent/secure-agent/secrets"

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

// unquote decodes a JSON string literal into bytes the caller owns and can zero (see
// secrets.UnquoteJSON), reporting whether raw was a valid one.
func unquote(raw []byte) ([]byte, bool) {
	v, err := secrets.UnquoteJSON(raw)
	return v, err == nil
}
