package mysql

import (
	"database/sql"
	"testing"
)

// TestColumnDefault covers both engines' forms of COLUMN_DEFAULT: MariaDB's SQL expressions
// and MySQL 8's bare literals (quoted here) and DEFAULT_GENERATED expressions.
func TestColumnDefault(t *testing.T) {
	t.Parallel()
	maria, mysql8 := &chunk{c: caps{mariaDB: true}}, &chunk{c: caps{}}
	null := sql.NullString{}
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	for _, tc := range []struct {
		x        *chunk
		def      sql.NullString
		dataType string
		extra    string
		want     string
	}{
		{maria, null, "int", "", ""},
		{maria, str("NULL"), "varchar", "", ""},
		{maria, str("'it''s'"), "varchar", "", "'it''s'"},
		{maria, str("current_timestamp(6)"), "datetime", "", "current_timestamp(6)"},
		{maria, str("1.50"), "decimal", "", "1.50"},
		{mysql8, null, "varchar", "", ""},
		{mysql8, str("it's \"q\"\nx\\y"), "varchar", "", `'it''s "q"\nx\\y'`},
		{mysql8, str(""), "char", "", "''"},
		{mysql8, str("NULL"), "varchar", "", "'NULL'"}, // MySQL 8 reports a NULL default as SQL NULL, so this is the string
		{mysql8, str("1.50"), "decimal", "", "1.50"},
		{mysql8, str("-3"), "int", "", "-3"},
		{mysql8, str("b'101'"), "bit", "", "b'101'"},
		{mysql8, str("2024-01-01"), "date", "", "'2024-01-01'"},
		{mysql8, str("CURRENT_TIMESTAMP"), "timestamp", "DEFAULT_GENERATED", "CURRENT_TIMESTAMP"},
		{mysql8, str("CURRENT_TIMESTAMP(3)"), "datetime", "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)", "CURRENT_TIMESTAMP(3)"},
		{mysql8, str("rand()"), "double", "DEFAULT_GENERATED", "(rand())"},
	} {
		if got := tc.x.columnDefault(tc.def, tc.dataType, tc.extra); got != tc.want {
			t.Errorf("mariaDB=%v default %+v (%s, %q) = %q, want %q", tc.x.c.mariaDB, tc.def, tc.dataType, tc.extra, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	for in, want := range map[string]string{"a": "a", "a_b$1": "a_b$1", "b c": "`b c`", "a`b": "`a``b`", "123": "`123`", "": "``", "é": "`é`"} {
		if got := paramName(in); got != want {
			t.Errorf("paramName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct{ method, desc, want string }{
		{"RANGE", "10", "VALUES LESS THAN (10)"},
		{"RANGE", "MAXVALUE", "VALUES LESS THAN MAXVALUE"},
		{"RANGE COLUMNS", "10,'x'", "VALUES LESS THAN (10,'x')"},
		{"LIST", "1,2", "VALUES IN (1,2)"},
		{"LIST COLUMNS", "'eu'", "VALUES IN ('eu')"},
		{"HASH", "", ""},
		{"SYSTEM_TIME", "CURRENT", "CURRENT"},
	} {
		if got := partitionBound(tc.method, str(tc.desc)); got != tc.want {
			t.Errorf("partitionBound(%q, %q) = %q, want %q", tc.method, tc.desc, got, tc.want)
		}
	}
	if got := partitionKey(str("KEY"), str("")); got != "KEY ()" {
		t.Errorf("KEY() partitioning = %q", got)
	}
	if got := partitionKey(str("SYSTEM_TIME"), sql.NullString{}); got != "SYSTEM_TIME" {
		t.Errorf("SYSTEM_TIME partitioning = %q", got)
	}
	for in, want := range map[string]string{"10.11.6-MariaDB-0+deb12u1": "10.11.6", "8.0.36": "8.0.36", "8.4.0-commercial": "8.4.0", "x": "x"} {
		if got := shortVersion(in); got != want {
			t.Errorf("shortVersion(%q) = %q", in, got)
		}
	}
}
