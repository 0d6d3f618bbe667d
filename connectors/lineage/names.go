package lineage

import "strings"

// relationNamesEqual reports whether two schema, table, alias or CTE names are the same name in
// dialect: exactly in MySQL (lower_case_table_names=0, the default on Linux, where the catalog
// and the normalised definition spell names alike), ASCII case-insensitively in SQLite.
func relationNamesEqual(d Dialect, a, b string) bool {
	if d == SQLite {
		return asciiEqualFold(a, b)
	}
	return a == b
}

// columnNamesEqual reports whether two column or window names are the same name in dialect:
// case-insensitively in both (SQLite folds ASCII letters only).
func columnNamesEqual(d Dialect, a, b string) bool {
	if d == SQLite {
		return asciiEqualFold(a, b)
	}
	return strings.EqualFold(a, b)
}

// asciiEqualFold is strings.EqualFold for ASCII letters only, as SQLite compares names.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if asciiLower(a[i]) != asciiLower(b[i]) {
			return false
		}
	}
	return true
}

// asciiLowerString lower-cases the ASCII letters of s.
func asciiLowerString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = asciiLower(c)
	}
	return string(b)
}

func asciiLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// sqliteViewColumnMatches reports whether the name the definition gives a view column is the
// name SQLite gave it (catalog): the same, or with the ":N" SQLite appends to a duplicate.
func sqliteViewColumnMatches(definition, catalog string) bool {
	if asciiEqualFold(definition, catalog) {
		return true
	}
	i := strings.LastIndexByte(catalog, ':')
	if i < 0 || i == len(catalog)-1 {
		return false
	}
	for _, c := range catalog[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return asciiEqualFold(definition, catalog[:i])
}
