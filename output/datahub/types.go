package datahub

import (
	"maps"
	"slices"
	"strings"
)

// Members of com.linkedin.schema.SchemaFieldDataType's union, by fully qualified name.
const (
	typeBoolean = "com.linkedin.schema.BooleanType"
	typeString  = "com.linkedin.schema.StringType"
	typeBytes   = "com.linkedin.schema.BytesType"
	typeNumber  = "com.linkedin.schema.NumberType"
	typeDate    = "com.linkedin.schema.DateType"
	typeTime    = "com.linkedin.schema.TimeType"
	typeEnum    = "com.linkedin.schema.EnumType"
	typeNull    = "com.linkedin.schema.NullType"
	typeMap     = "com.linkedin.schema.MapType"
	typeArray   = "com.linkedin.schema.ArrayType"
	typeRecord  = "com.linkedin.schema.RecordType"
)

// The mapping of the engines' type names to DataHub's field types. It follows DataHub's
// SQLAlchemy mapping (sql_common's _field_type_mapping) where that names the type. A column's
// DataType is lower-cased, its parameters ("(255)", "(10,2)", an enum's labels) and MySQL's
// "unsigned", "signed" and "zerofill" dropped, before it is looked up.
//
// PostgreSQL: integer, numeric, floating-point and money types are NumberType; boolean
// BooleanType; character types, text, name, citext, uuid, oid, inet, cidr, macaddr, xml,
// tsquery, jsonpath StringType; bytea, bit, bit varying and tsvector BytesType; date DateType;
// time, timestamp (with or without time zone) and interval TimeType; json and jsonb RecordType;
// hstore MapType (string to string); anything ending in "[]" ArrayType (its element's type as
// nestedType).
//
// MySQL and MariaDB: the integer types (tinyint(1), BOOLEAN's storage, included), decimal,
// float, double and year are NumberType; bool and boolean BooleanType; char, varchar, the text
// types, set, and MariaDB's uuid, inet4 and inet6 StringType; bit, binary, varbinary and the blob
// types BytesType; enum EnumType; date DateType; time, datetime and timestamp TimeType; json
// RecordType.
//
// SQLite: boolean and bool are BooleanType; date DateType; datetime, timestamp and time
// TimeType; json and jsonb RecordType; other declared types by SQLite's affinity rules: one
// containing "int", "real", "floa" or "doub", or of NUMERIC affinity, is NumberType, one
// containing "char", "clob" or "text" StringType, one containing "blob" BytesType.
//
// Every other type (geometric and spatial types, ranges, user-defined types, a column declared
// without a type) is NullType, DataHub's type for what it cannot map.
var (
	postgresTypes = byName(map[string][]string{
		typeNumber: {"smallint", "integer", "bigint", "int", "int2", "int4", "int8", "smallserial",
			"serial", "bigserial", "serial2", "serial4", "serial8", "real", "float4", "float8",
			"double precision", "numeric", "decimal", "money"},
		typeBoolean: {"boolean", "bool"},
		typeString: {"character varying", "varchar", "character", "char", "bpchar", "text", "name",
			"citext", "uuid", "oid", "inet", "cidr", "macaddr", "macaddr8", "xml", "tsquery", "jsonpath"},
		typeBytes: {"bytea", "bit", "bit varying", "varbit", "tsvector"},
		typeDate:  {"date"},
		typeTime: {"time", "timetz", "time without time zone", "time with time zone", "timestamp",
			"timestamptz", "timestamp without time zone", "timestamp with time zone", "interval"},
		typeRecord: {"json", "jsonb"},
		typeMap:    {"hstore"},
	})
	mysqlTypes = byName(map[string][]string{
		typeNumber: {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "dec",
			"numeric", "fixed", "float", "double", "double precision", "real", "year"},
		typeBoolean: {"bool", "boolean"},
		typeString: {"char", "varchar", "nchar", "nvarchar", "national char", "national varchar",
			"tinytext", "text", "mediumtext", "longtext", "set", "uuid", "inet4", "inet6"},
		typeBytes:  {"bit", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"},
		typeEnum:   {"enum"},
		typeDate:   {"date"},
		typeTime:   {"time", "datetime", "timestamp"},
		typeRecord: {"json"},
	})
	sqliteTypes = byName(map[string][]string{
		typeBoolean: {"boolean", "bool"},
		typeDate:    {"date"},
		typeTime:    {"datetime", "timestamp", "time"},
		typeRecord:  {"json", "jsonb"},
	})
)

// byName inverts a table of field types and the type names that map to each (were a name
// listed twice, the member last in byte order would win, always the same).
func byName(members map[string][]string) map[string]string {
	out := map[string]string{}
	for _, member := range slices.Sorted(maps.Keys(members)) {
		for _, n := range members[member] {
			out[n] = member
		}
	}
	return out
}

// fieldType maps a column's DataType on connector to a SchemaFieldDataType (see the mapping
// above).
func fieldType(connector, dataType string) fieldDataType {
	member, detail := mapType(connector, dataType)
	return fieldDataType{Type: map[string]typeDetail{member: detail}}
}

// mapType returns the union member for dataType on connector, and the member's record.
func mapType(connector, dataType string) (string, typeDetail) {
	base := normalizeType(dataType)
	switch connector {
	case "postgres":
		if elem, ok := strings.CutSuffix(strings.TrimSpace(dataType), "[]"); ok {
			return typeArray, typeDetail{NestedType: []string{elem}}
		}
		if m, ok := postgresTypes[base]; ok {
			if m == typeMap {
				return m, typeDetail{KeyType: "string", ValueType: "string"}
			}
			return m, typeDetail{}
		}
		if strings.HasPrefix(base, "interval ") { // interval day to second, ...
			return typeTime, typeDetail{}
		}
	case "mysql":
		if m, ok := mysqlTypes[base]; ok {
			return m, typeDetail{}
		}
	case "sqlite":
		return sqliteType(base), typeDetail{}
	}
	return typeNull, typeDetail{}
}

// sqliteType applies SQLite's type affinity rules (https://sqlite.org/datatype3.html, 3.1) to a
// declared type, after the names that say more than their affinity.
func sqliteType(base string) string {
	if m, ok := sqliteTypes[base]; ok {
		return m
	}
	switch {
	case base == "":
		return typeNull
	case strings.Contains(base, "int"):
		return typeNumber
	case strings.Contains(base, "char"), strings.Contains(base, "clob"), strings.Contains(base, "text"):
		return typeString
	case strings.Contains(base, "blob"):
		return typeBytes
	}
	return typeNumber // REAL ("real", "floa", "doub") and NUMERIC affinity
}

// normalizeType lower-cases a type name, drops parenthesised parameters and MySQL's sign and
// zero-fill attributes, removes quotes (PostgreSQL's "char") and collapses spaces.
func normalizeType(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '(':
			depth++
		case r == ')':
			if depth > 0 {
				depth--
			}
		case depth > 0, r == '"':
		default:
			b.WriteRune(r)
		}
	}
	var words []string
	for _, w := range strings.Fields(b.String()) {
		if w != "unsigned" && w != "signed" && w != "zerofill" {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}
