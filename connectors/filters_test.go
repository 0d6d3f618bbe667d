package connectors

import (
	"path"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true}, {"*", "public.orders", true}, {"public.*", "public.orders", true},
		{"public.*", "sales.orders", false}, {"*.orders", "a/b.orders", true}, {"p?blic", "public", true},
		{"p?blic", "pblic", false}, {"tmp_*_old", "tmp_x_y_old", true}, {"tmp_*_old", "tmp_old", false},
		{"Ünï*", "Ünïcode", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"exact", "exact", true},
		{"exact", "exactly", false}, {"**", "x", true}, {"", "", true}, {"", "x", false},
		{"*????", "ꃙ00", false}, {"*???", "ꃙ00", true}, // '?' is one character, not one byte
	} {
		if got := Glob(c.pattern, c.name); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestFilters(t *testing.T) {
	f := Filters{IncludeSchemas: []string{"sales*", "hr"}, ExcludeSchemas: []string{"sales_tmp"},
		IncludeTables: []string{"sales.*"}, ExcludeTables: []string{"*.tmp_*"}}
	for schema, want := range map[string]bool{"sales": true, "sales_eu": true, "hr": true, "sales_tmp": false, "ops": false} {
		if f.SchemaIncluded(schema) != want {
			t.Errorf("schema %q included = %v", schema, !want)
		}
	}
	for table, want := range map[string]bool{"sales.orders": true, "sales.tmp_x": false, "hr.people": false} {
		s, tb, _ := strings.Cut(table, ".")
		if f.TableIncluded(s, tb) != want {
			t.Errorf("table %q included = %v", table, !want)
		}
	}
	if (Filters{}).TableIncluded("any", "thing") != true {
		t.Error("empty filters must include everything")
	}
	problems := Filters{IncludeTables: []string{""}, ExcludeSchemas: []string{string([]byte{0xff})}}.Validate()
	if len(problems) != 2 {
		t.Errorf("problems = %v", problems)
	}
}

// FuzzGlob checks Glob against path.Match on ASCII names without '/' and the characters that
// path.Match treats differently ([, \), where the two must agree. (On multibyte names path.Match
// is no oracle: its '*' backtracks by bytes, so "*????" matches "ꃙ00" through a mid-rune offset.)
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"*", "abc"}, {"a?c", "abc"}, {"*b*", "abc"}, {"a*", ""}, {"**a", "xa"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Glob(pattern, name) // must never panic or hang
		if strings.ContainsAny(pattern+name, "/[]\\") || !isASCII(pattern+name) {
			return
		}
		want, err := path.Match(pattern, name)
		if err == nil && got != want {
			t.Fatalf("Glob(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzFilters validates arbitrary patterns as they arrive in a workflow input's filters: a
// refused pattern gets a problem that names its place; an accepted one can be matched against
// any name without panicking.
func FuzzFilters(f *testing.F) {
	for _, s := range [][2]string{{"tmp_*", "tmp_1"}, {"", "x"}, {"\xff", "x"}, {strings.Repeat("*a", 600), "aaaa"}, {"sales", "Sales"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		fl := Filters{IncludeSchemas: []string{"*"}, ExcludeTables: []string{pattern}, TempTables: []string{pattern}}
		problems := fl.Validate()
		for _, p := range problems {
			if !strings.HasPrefix(p, "filters.excludeTables[0] ") && !strings.HasPrefix(p, "filters.tempTables[0] ") {
				t.Fatalf("problem %q does not name the pattern's place", p)
			}
		}
		if len(problems) > 0 {
			if len(problems) != 2 {
				t.Fatalf("one bad pattern in two lists gave %d problems: %v", len(problems), problems)
			}
			return
		}
		// excludeTables patterns match "schema.table", tempTables patterns the table name alone.
		excluded := Glob(pattern, "s."+name) || Glob(pattern, name)
		if fl.TableIncluded("s", name) == excluded {
			t.Fatalf("TableIncluded(s, %q) with pattern %q excluded and temp: %v, Glob says excluded %v", name, pattern, !excluded, excluded)
		}
	})
}
