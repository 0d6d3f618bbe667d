package connectors

import (
	"fmt"
	"unicode/utf8"
)

// Validate reports every malformed pattern at once.
func (f Filters) Validate() []string {
	var problems []string
	check := func(list string, patterns []string) {
		for i, p := range patterns {
			switch {
			case p == "":
				problems = append(problems, fmt.Sprintf("filters.%s[%d] is empty", list, i))
			case !utf8.ValidString(p):
				problems = append(problems, fmt.Sprintf("filters.%s[%d] is not valid UTF-8", list, i))
			case len(p) > 1024:
				problems = append(problems, fmt.Sprintf("filters.%s[%d] is longer than 1024 bytes", list, i))
			}
		}
	}
	check("includeDatabases", f.IncludeDatabases)
	check("excludeDatabases", f.ExcludeDatabases)
	check("includeSchemas", f.IncludeSchemas)
	check("excludeSchemas", f.ExcludeSchemas)
	check("includeTables", f.IncludeTables)
	check("excludeTables", f.ExcludeTables)
	check("tempTables", f.TempTables)
	return problems
}

// DatabaseIncluded reports whether the database passes the database filters.
func (f Filters) DatabaseIncluded(database string) bool {
	return included(database, f.IncludeDatabases, f.ExcludeDatabases)
}

// SchemaIncluded reports whether the schema passes the schema filters. It does not know which
// schemas are the engine's own: connectors skip those unless IncludeSystemSchemas is set.
func (f Filters) SchemaIncluded(schema string) bool {
	return included(schema, f.IncludeSchemas, f.ExcludeSchemas)
}

// TableIncluded reports whether schema.table passes the table filters and is not a temp table.
func (f Filters) TableIncluded(schema, table string) bool {
	for _, p := range f.TempTables {
		if Glob(p, table) {
			return false
		}
	}
	return included(schema+"."+table, f.IncludeTables, f.ExcludeTables)
}

func included(name string, include, exclude []string) bool {
	for _, p := range exclude {
		if Glob(p, name) {
			return false
		}
	}
	if len(include) == 0 {
		return true
	}
	for _, p := range include {
		if Glob(p, name) {
			return true
		}
	}
	return false
}

// Glob reports whether name matches pattern, where "*" matches any run of characters (dots and
// slashes included) and "?" matches exactly one character; every other character matches
// itself, byte for byte (so invalid UTF-8 only matches itself). Matching is linear in
// len(pattern)*len(name) at worst, so no pattern can make it slow.
func Glob(pattern, name string) bool {
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(name) {
		_, nsize := utf8.DecodeRuneInString(name[ni:])
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, ni
			pi++
		case pi < len(pattern) && pattern[pi] == '?':
			pi++
			ni += nsize
		case pi < len(pattern) && samePrefixRune(pattern[pi:], name[ni:], nsize):
			pi += nsize
			ni += nsize
		case star >= 0:
			pi = star + 1
			_, msize := utf8.DecodeRuneInString(name[mark:])
			mark += msize
			ni = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// samePrefixRune reports whether pattern starts with the first size bytes of name.
func samePrefixRune(pattern, name string, size int) bool {
	return len(pattern) >= size && pattern[:size] == name[:size]
}
