package datahub

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf16"
)

// urnEncoder percent-encodes the characters DataHub's UrnEncoder reserves in URN parts: a
// comma or a parenthesis in a name would otherwise end a tuple URN's part.
var urnEncoder = strings.NewReplacer(",", "%2C", "(", "%28", ")", "%29")

// platformURN returns urn:li:dataPlatform:<platform>.
func platformURN(platform string) string { return "urn:li:dataPlatform:" + platform }

// datasetURN returns the URN of the dataset name on platform in env (mce_builder's
// make_dataset_urn), the name percent-encoded as UrnEncoder does.
func datasetURN(platform, name, env string) string {
	return "urn:li:dataset:(" + platformURN(platform) + "," + urnEncoder.Replace(name) + "," + env + ")"
}

// schemaFieldURN returns the URN of a field of a dataset (mce_builder's make_schema_field_urn).
func schemaFieldURN(dataset, fieldPath string) string {
	return "urn:li:schemaField:(" + dataset + "," + urnEncoder.Replace(fieldPath) + ")"
}

// containerURN returns urn:li:container:<guid>.
func containerURN(guid string) string { return "urn:li:container:" + guid }

// corpuserURN returns the URN of the user named name (mce_builder's make_user_urn).
func corpuserURN(name string) string { return "urn:li:corpuser:" + urnEncoder.Replace(name) }

// containerGUID returns the GUID of a container key as mcp_builder computes it: the MD5, in
// lower-case hex, of the key's JSON with its keys sorted, no spaces, and every character outside
// printable ASCII escaped (Python's json.dumps(key, separators=(",", ":"), sort_keys=True)).
//
// The key is ContainerKey.guid_dict of the DatabaseKey or SchemaKey that DataHub's SQL sources
// build (sql_utils.gen_database_key, gen_schema_key): "platform", "database", "schema" for a
// schema, and, because those keys set backcompat_env_as_instance and the agent knows of no
// platform instance, "instance" holding the env. For database "shop" and schema "public" on
// postgres in PROD the schema container hashes
//
//	{"database":"shop","instance":"PROD","platform":"postgres","schema":"public"}
//
// and the database container the same without "schema".
func containerGUID(key map[string]string) string {
	sum := md5.Sum([]byte(keyJSON(key)))
	return hex.EncodeToString(sum[:])
}

// keyJSON writes key as Python's json.dumps does with sort_keys and compact separators.
func keyJSON(key map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(key)) {
		if i > 0 {
			b.WriteByte(',')
		}
		pyQuote(&b, k)
		b.WriteByte(':')
		pyQuote(&b, key[k])
	}
	b.WriteByte('}')
	return b.String()
}

// pyQuote writes s as a JSON string the way Python's json module does with ensure_ascii (its
// default): the short escapes for '"', '\\', '\n', '\r', '\t', '\b' and '\f', printable ASCII
// as itself, and every other character as \uXXXX in lower-case hex (a UTF-16 surrogate pair
// above U+FFFF). A byte that is not UTF-8 counts as U+FFFD, as a Python str would hold it.
func pyQuote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, hi, lo)
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
}
