package postgres

import (
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

func TestFieldNames(t *testing.T) {
	type owner struct {
		name    string
		isLogin bool
	}
	for _, tc := range []struct {
		what                 string
		host, database, user string
		literals             []string
		wantDatabase         string
		owners               map[string]owner // owner name in the catalog -> what entities carry
	}{
		{what: "all from secrets", host: "h", database: "d", user: "u",
			owners: map[string]owner{"u": {"", true}, "d": {"", false}, "h": {"", false}, "other": {"other", false}}},
		{what: "all literals", host: "h", database: "d", user: "u", literals: []string{"host", "database", "username"},
			wantDatabase: "d",
			// Owners equal to host or database stay withheld, as before literals were known.
			owners: map[string]owner{"u": {"u", true}, "d": {"", false}, "h": {"", false}, "other": {"other", false}}},
		{what: "literal user named like the secret host", host: "x", database: "d", user: "x",
			literals: []string{"username", "database"}, wantDatabase: "d",
			owners: map[string]owner{"x": {"", true}}},
		{what: "literal database named like the secret user", host: "h", database: "x", user: "x",
			literals: []string{"database"}, wantDatabase: "",
			owners: map[string]owner{"x": {"", true}}},
		{what: "literal user, secret database", host: "h", database: "d", user: "u", literals: []string{"username"},
			owners: map[string]owner{"u": {"u", true}, "d": {"", false}}},
	} {
		n := newFieldNames(tc.host, tc.database, tc.user, connectors.OpenOptions{Literals: tc.literals})
		if n.database != tc.wantDatabase {
			t.Errorf("%s: database %q, want %q", tc.what, n.database, tc.wantDatabase)
		}
		for name, want := range tc.owners {
			if got, isLogin := n.owner(name); got != want.name || isLogin != want.isLogin {
				t.Errorf("%s: owner(%q) = %q, %t; want %q, %t", tc.what, name, got, isLogin, want.name, want.isLogin)
			}
		}
	}
}
