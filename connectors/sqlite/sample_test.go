package sqlite

// TestChinook extracts a real public sample database, written by others, and checks what the
// connector reads against PRAGMA statements run here on a connection of the test's own, and
// against the sample's own CREATE statements; never against the connector's earlier output.
//
// The sample is the Chinook database 1.4 by Luis Rocha, under the MIT licence: the SQLite file
// test/sqlite/Chinook_Sqlite.sqlite of pgloader's Debian source package. scripts/samples fetches
// it (nothing of it is in this repository); testenv.Sample finds it.

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

func TestChinook(t *testing.T) {
	t.Parallel()
	// A copy in a directory of the test's own: the connector is confined to allowed directories,
	// and the sample stays as fetched.
	src, err := os.ReadFile(testenv.Sample(t, "chinook.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(realDir(t, t.TempDir()), "chinook.sqlite")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	c := extractAll(t, open(t, path), connectors.Filters{})
	p := readPragmas(t, path)

	t.Run("tables", func(t *testing.T) {
		var got []string
		for _, tb := range c.tables() {
			got = append(got, tb.Schema+"."+tb.Name+" "+tb.Type)
		}
		sort.Strings(got)
		if !slices.Equal(got, p.tables) || len(got) != 11 {
			t.Errorf("tables %q, PRAGMA table_list %q; Chinook has 11", got, p.tables)
		}
		for _, e := range c.entities {
			switch e.(type) {
			case connectors.Trigger, connectors.Lineage, connectors.Constraint:
				t.Errorf("Chinook has no triggers, views or CHECK constraints: %+v", e)
			}
		}
	})

	t.Run("columns", func(t *testing.T) {
		got := map[string]string{}
		for _, col := range allColumns(c) {
			got[fmt.Sprintf("%s.%02d", col.Table, col.Position)] = fmt.Sprintf("%s %s nullable=%t pk=%t default=%s",
				col.Name, col.DataType, col.Nullable, col.PrimaryKey, col.Default)
		}
		testenv.CompareMaps(t, "column", got, p.columns)
		if w := "UnitPrice NUMERIC(10,2) nullable=false pk=false default="; got["Track.09"] != w {
			t.Errorf("Track's 9th column %q, want %q (the sample's CREATE TABLE)", got["Track.09"], w)
		}
	})

	t.Run("keys", func(t *testing.T) {
		got := map[string]string{}
		names := map[string]string{}
		for _, k := range allKeys(c) {
			key := k.Table + " " + k.Type + "(" + strings.Join(k.Columns, ",") + ")"
			got[key] = fmt.Sprintf("-> %s.%s(%s) update=%s delete=%s", k.RefSchema, k.RefTable, strings.Join(k.RefColumns, ","),
				k.OnUpdate, k.OnDelete)
			names[key] = k.Name
		}
		testenv.CompareMaps(t, "key", got, p.keys)
		// The sample's CREATE TABLE statements: each table's primary key is CONSTRAINT
		// [PK_<table>]; the foreign keys have no names (the connector numbers them in
		// declaration order); Track's are AlbumId, GenreId, MediaTypeId, in that order.
		for table, stmt := range p.statements {
			m := regexp.MustCompile(`CONSTRAINT \[(PK_\w+)\] PRIMARY KEY +\(([^)]*)\)`).FindStringSubmatch(stmt)
			if m == nil {
				t.Errorf("%s: no named primary key in %q", table, stmt)
				continue
			}
			cols := strings.NewReplacer("[", "", "]", "", " ", "").Replace(m[2])
			if n := names[table+" primary_key("+cols+")"]; n != m[1] {
				t.Errorf("%s: primary key (%s) named %q, want %q", table, cols, n, m[1])
			}
		}
		for i, col := range []string{"AlbumId", "GenreId", "MediaTypeId"} {
			key := "Track foreign_key(" + col + ")"
			want := fmt.Sprintf("-> main.%s(%s) update=NO ACTION delete=NO ACTION", strings.TrimSuffix(col, "Id"), col)
			if got[key] != want || names[key] != fmt.Sprintf("fk_Track_%d", i+1) {
				t.Errorf("%s named %q = %q, want fk_Track_%d %q", key, names[key], got[key], i+1, want)
			}
		}
	})

	t.Run("indexes", func(t *testing.T) {
		got := map[string]string{}
		for _, e := range c.entities {
			if ix, ok := e.(connectors.Index); ok {
				got[ix.Table+"."+ix.Name] = fmt.Sprintf("(%s) unique=%t primary=%t", strings.Join(ix.Columns, ","), ix.Unique, ix.Primary)
			}
		}
		testenv.CompareMaps(t, "index", got, p.indexes)
		// The sample's statements: a unique IPK_ index per table (11), an IFK_ index per foreign
		// key (10), and the automatic index of PlaylistTrack's two-column primary key.
		if got["PlaylistTrack.sqlite_autoindex_PlaylistTrack_1"] != "(PlaylistId,TrackId) unique=true primary=true" ||
			got["Track.IFK_TrackGenreId"] != "(GenreId) unique=false primary=false" || len(got) != 22 {
			t.Errorf("indexes %q", got)
		}
	})
}

// chinookPragmas is what PRAGMA statements say of the main schema, formatted as the test
// compares it.
type chinookPragmas struct {
	// tables are "main.<name> <type>", sorted.
	tables []string
	// columns by "<table>.<position>", keys by "<table> <type>(<columns>)", indexes by
	// "<table>.<name>".
	columns, keys, indexes map[string]string
	// statements are the tables' CREATE TABLE statements, by name.
	statements map[string]string
}

// readPragmas reads the catalog of the database at path with plain PRAGMA statements, one table
// at a time, on a read-only connection of its own.
func readPragmas(t *testing.T, path string) chinookPragmas {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	rows := func(q string) [][]sql.NullString {
		t.Helper()
		r, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer func() { _ = r.Close() }()
		cols, err := r.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var out [][]sql.NullString
		for r.Next() {
			row := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range row {
				ptrs[i] = &row[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, row)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	p := chinookPragmas{columns: map[string]string{}, keys: map[string]string{}, indexes: map[string]string{},
		statements: map[string]string{}}
	// PRAGMA table_list: schema, name, type, ncol, wr, strict.
	for _, r := range rows(`PRAGMA main.table_list`) {
		if strings.HasPrefix(r[1].String, "sqlite_") {
			continue
		}
		p.tables = append(p.tables, "main."+r[1].String+" "+r[2].String)
	}
	sort.Strings(p.tables)
	for _, r := range rows(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`) {
		p.statements[r[0].String] = r[1].String
	}
	for table := range p.statements {
		q := quoteIdent(table)
		// PRAGMA table_info: cid, name, type, notnull, dflt_value, pk (position in the key).
		primary := map[string]string{}
		for _, r := range rows(`PRAGMA table_info(` + q + `)`) {
			cid, err := strconv.Atoi(r[0].String)
			if err != nil {
				t.Fatal(err)
			}
			p.columns[fmt.Sprintf("%s.%02d", table, cid+1)] = fmt.Sprintf("%s %s nullable=%t pk=%t default=%s",
				r[1].String, r[2].String, r[3].String == "0", r[5].String != "0", r[4].String)
			if r[5].String != "0" {
				primary[r[5].String] = r[1].String
			}
		}
		var pk []string
		for i := 1; i <= len(primary); i++ {
			pk = append(pk, primary[fmt.Sprint(i)])
		}
		if len(pk) > 0 {
			p.keys[table+" primary_key("+strings.Join(pk, ",")+")"] = "-> .() update= delete="
		}
		// PRAGMA foreign_key_list: id, seq, table, from, to, on_update, on_delete, match; one
		// row per column, grouped by id.
		type fk struct{ from, to []string }
		byID := map[string]*fk{}
		refs := map[string][3]string{}
		for _, r := range rows(`PRAGMA foreign_key_list(` + q + `)`) {
			f := byID[r[0].String]
			if f == nil {
				f = &fk{}
				byID[r[0].String] = f
			}
			f.from, f.to = append(f.from, r[3].String), append(f.to, r[4].String)
			refs[r[0].String] = [3]string{r[2].String, r[5].String, r[6].String}
		}
		for id, f := range byID {
			ref := refs[id]
			p.keys[table+" foreign_key("+strings.Join(f.from, ",")+")"] = fmt.Sprintf("-> main.%s(%s) update=%s delete=%s",
				ref[0], strings.Join(f.to, ","), ref[1], ref[2])
		}
		// PRAGMA index_list: seq, name, unique, origin (c, u, pk), partial; index_info: seqno,
		// cid, name.
		for _, r := range rows(`PRAGMA index_list(` + q + `)`) {
			if r[3].String == "u" {
				t.Fatalf("%s: Chinook has no UNIQUE constraints, index %s says otherwise", table, r[1].String)
			}
			var cols []string
			for _, c := range rows(`PRAGMA index_info(` + quoteIdent(r[1].String) + `)`) {
				cols = append(cols, c[2].String)
			}
			p.indexes[table+"."+r[1].String] = fmt.Sprintf("(%s) unique=%t primary=%t", strings.Join(cols, ","),
				r[2].String == "1", r[3].String == "pk")
		}
	}
	return p
}

func allColumns(c *collector) []connectors.Column {
	var out []connectors.Column
	for _, e := range c.entities {
		if col, ok := e.(connectors.Column); ok {
			out = append(out, col)
		}
	}
	return out
}

func allKeys(c *collector) []connectors.Key {
	var out []connectors.Key
	for _, e := range c.entities {
		if k, ok := e.(connectors.Key); ok {
			out = append(out, k)
		}
	}
	return out
}
