package datahub

import (
	"slices"
	"testing"
)

func TestFieldTypes(t *testing.T) {
	cases := []struct{ connector, dataType, want string }{
		{"postgres", "integer", typeNumber},
		{"postgres", "numeric(10,2)", typeNumber},
		{"postgres", "double precision", typeNumber},
		{"postgres", "money", typeNumber},
		{"postgres", "boolean", typeBoolean},
		{"postgres", "character varying(255)", typeString},
		{"postgres", `"char"`, typeString},
		{"postgres", "uuid", typeString},
		{"postgres", "bytea", typeBytes},
		{"postgres", "bit varying(8)", typeBytes},
		{"postgres", "date", typeDate},
		{"postgres", "timestamp(3) with time zone", typeTime},
		{"postgres", "time without time zone", typeTime},
		{"postgres", "interval day to second", typeTime},
		{"postgres", "jsonb", typeRecord},
		{"postgres", "hstore", typeMap},
		{"postgres", "integer[]", typeArray},
		{"postgres", "point", typeNull},
		{"postgres", "tstzrange", typeNull},
		{"postgres", "mood", typeNull},
		{"mysql", "int(10) unsigned zerofill", typeNumber},
		{"mysql", "tinyint(1)", typeNumber},
		{"mysql", "decimal(10,2)", typeNumber},
		{"mysql", "year", typeNumber},
		{"mysql", "varchar(20)", typeString},
		{"mysql", "longtext", typeString},
		{"mysql", "set('r','w')", typeString},
		{"mysql", "enum('a','b')", typeEnum},
		{"mysql", "bit(1)", typeBytes},
		{"mysql", "varbinary(16)", typeBytes},
		{"mysql", "date", typeDate},
		{"mysql", "datetime(6)", typeTime},
		{"mysql", "json", typeRecord},
		{"mysql", "geometry", typeNull},
		{"sqlite", "INTEGER", typeNumber},
		{"sqlite", "BIGINT", typeNumber},
		{"sqlite", "VARCHAR(40)", typeString},
		{"sqlite", "CLOB", typeString},
		{"sqlite", "BLOB", typeBytes},
		{"sqlite", "DOUBLE PRECISION", typeNumber},
		{"sqlite", "DECIMAL(10,5)", typeNumber},
		{"sqlite", "BOOLEAN", typeBoolean},
		{"sqlite", "DATE", typeDate},
		{"sqlite", "DATETIME", typeTime},
		{"sqlite", "", typeNull},
	}
	for _, tc := range cases {
		got, _ := mapType(tc.connector, tc.dataType)
		if got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.connector, tc.dataType, got, tc.want)
		}
	}
	if _, d := mapType("postgres", "character varying(20)[]"); !slices.Equal(d.NestedType, []string{"character varying(20)"}) {
		t.Errorf("array element type %v", d.NestedType)
	}
	if _, d := mapType("postgres", "hstore"); d.KeyType != "string" || d.ValueType != "string" {
		t.Errorf("hstore %+v", d)
	}
}
