package openlineage

import (
	"fmt"
	"strings"

	"github.com/secure-agent/secure-agent/output/catalog"
)

// namer builds the namespace and the dataset names of one catalog (see the package doc).
type namer struct {
	connector string
	namespace string
	// database is Catalog.Database, for the engines whose names start with it.
	database string
}

// schemes are the namespace's URI scheme per connector.
var schemes = map[string]string{
	"postgres": "postgres",
	"mysql":    "mysql",
	"sqlite":   "sqlite",
}

// newNamer returns the namer of c. It fails (ErrInvalid) for a connector it does not know and
// for a catalog without a source label.
func newNamer(c *catalog.Catalog) (namer, error) {
	scheme, ok := schemes[c.Connector]
	if !ok {
		return namer{}, fmt.Errorf("%w: connector %q has no OpenLineage naming", ErrInvalid, c.Connector)
	}
	if c.Source == "" {
		return namer{}, fmt.Errorf("%w: the catalog has no source label to name its namespace by", ErrInvalid)
	}
	return namer{connector: c.Connector, namespace: scheme + "://" + escapeAuthority(c.Source), database: c.Database()}, nil
}

// Namespace returns the namespace of every dataset of c: "<scheme>://<escaped source label>".
func Namespace(c *catalog.Catalog) (string, error) {
	n, err := newNamer(c)
	if err != nil {
		return "", err
	}
	return n.namespace, nil
}

// DatasetName returns the name, within Namespace(c), of table (or view) table of schema.
func DatasetName(c *catalog.Catalog, schema, table string) (string, error) {
	n, err := newNamer(c)
	if err != nil {
		return "", err
	}
	return n.name(schema, table), nil
}

// levels returns the parts of the name of schema.table, highest first, as hierarchy levels.
// The name is their names joined with dots.
func (n namer) levels(schema, table string) []HierarchyLevel {
	if n.connector == "postgres" {
		return []HierarchyLevel{
			{Type: hierarchyLevelDatabase, Name: n.database},
			{Type: hierarchyLevelSchema, Name: schema},
			{Type: hierarchyLevelTable, Name: table},
		}
	}
	top := hierarchyLevelSchema // SQLite: main, temp or an attached name
	if n.connector == "mysql" {
		top = hierarchyLevelDatabase // a MySQL schema is a database
	}
	return []HierarchyLevel{{Type: top, Name: schema}, {Type: hierarchyLevelTable, Name: table}}
}

// name returns the dataset name of schema.table.
func (n namer) name(schema, table string) string {
	lv := n.levels(schema, table)
	parts := make([]string, len(lv))
	for i, l := range lv {
		parts[i] = l.Name
	}
	return strings.Join(parts, ".")
}

// escapeAuthority percent-encodes every byte of s outside RFC 3986's unreserved characters
// (ALPHA, DIGIT, "-", ".", "_", "~"), hex digits in upper case, so that the result is a valid
// reg-name authority with no user info or path in it, whatever s holds. One exception: a label
// of the form host:port (one colon, then 1 to 5 digits) keeps its colon, so that an operator
// whose host is not a secret can choose the label the naming convention would give
// ("db1.internal:5432") and the namespace lines up with other producers'.
//
// RFC 3986 allows any octet percent-encoded in a reg-name; Go's net/url is stricter and refuses
// an encoded ASCII byte in a host, so a label with, say, a space gives a namespace that
// url.Parse rejects. The spec does not ask the namespace to be a URI it can parse.
func escapeAuthority(s string) string {
	if host, port, ok := strings.Cut(s, ":"); ok && host != "" && isPort(port) {
		return escapeAuthority(host) + ":" + port
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// isPort reports whether s is 1 to 5 decimal digits.
func isPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
