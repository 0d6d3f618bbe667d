// Package connectors declares the data sources the agent can extract metadata from: each
// connector's connection fields (and which are sensitive), the metadata entity model, and the
// Source interface that drivers in the subpackages implement.
//
// This package holds declarations only and no drivers, so deterministic workflow code may import
// it to validate input.
package connectors

import (
	"context"
	"slices"
	"sort"

	"github.com/secure-agent/secure-agent/secrets"
)

// FieldSpec declares one connection field of a connector.
type FieldSpec struct {
	Name string
	// Required fields must be present in the input.
	Required bool
	// Sensitive fields must come from a secret (see secrets.Resolve).
	Sensitive bool
	// Doc says what the field holds, for validation messages and the README.
	Doc string
}

// Spec declares a connector.
type Spec struct {
	Name   string
	Doc    string
	Fields []FieldSpec
}

// Field returns the named field's declaration.
func (s Spec) Field(name string) (FieldSpec, bool) {
	i := slices.IndexFunc(s.Fields, func(f FieldSpec) bool { return f.Name == name })
	if i < 0 {
		return FieldSpec{}, false
	}
	return s.Fields[i], true
}

// FieldNames returns the names of the connector's fields, in declaration order.
func (s Spec) FieldNames() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

var specs = map[string]Spec{
	"sqlite": {
		Name: "sqlite",
		Doc:  "a SQLite database file on the agent's file system, opened read-only",
		Fields: []FieldSpec{
			{Name: "path", Required: true, Doc: "path of the database file on the agent (a literal, or the key/name of a secret that holds it)"},
		},
	},
}

// Lookup returns the spec of the named connector.
func Lookup(name string) (Spec, bool) {
	s, ok := specs[name]
	return s, ok
}

// Names returns the names of all connectors, sorted.
func Names() []string {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Credentials are a connector's resolved connection fields, by field name. Values are plaintext:
// never log, return or persist them.
type Credentials map[string]secrets.Value

// Source is an open connection to one data source. Implementations must be safe for use by one
// goroutine at a time, never put a credential into an error, and stop promptly when ctx ends.
type Source interface {
	// Preflight checks that the source is reachable, the credentials authenticate and the
	// catalog is readable. An authentication failure is a *secrets.Error of kind
	// SourceAuthFailed; an unreachable source is SourceUnavailable.
	Preflight(ctx context.Context) (*PreflightReport, error)
	// Schemas lists the schemas that pass filters, sorted.
	Schemas(ctx context.Context, filters Filters) ([]string, error)
	// Extract streams the entities of the given schemas (tables that pass filters) to w, schema
	// by schema in the order given.
	Extract(ctx context.Context, schemas []string, filters Filters, w EntityWriter) error
	// Close releases the connection.
	Close() error
}

// PreflightReport describes what a successful preflight found. It holds no credentials.
type PreflightReport struct {
	// ServerVersion is the engine's version string.
	ServerVersion string `json:"serverVersion,omitempty"`
	// Identity is a non-secret description of the source, such as "sqlite:sample.db".
	Identity string `json:"identity,omitempty"`
	// MissingPrivileges names catalog privileges the credentials lack.
	MissingPrivileges []string `json:"missingPrivileges,omitempty"`
}

// EntityWriter receives extracted entities.
type EntityWriter interface {
	Write(e Entity) error
}

// Entity is one metadata record. Kind names its output file ("tables", "columns", ...).
type Entity interface {
	Kind() string
}

// Table is a table or view.
type Table struct {
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// Type is "table", "view", "materialized_view", "partitioned_table", "partition" or
	// "foreign_table".
	Type       string `json:"type"`
	Comment    string `json:"comment,omitempty"`
	Definition string `json:"definition,omitempty"` // view definition, if any
	RowCount   *int64 `json:"rowCount,omitempty"`   // estimate, if the engine knows it
}

// Kind implements Entity.
func (Table) Kind() string { return "tables" }

// Column is one column of a table or view.
type Column struct {
	Database   string `json:"database,omitempty"`
	Schema     string `json:"schema"`
	Table      string `json:"table"`
	Name       string `json:"name"`
	Position   int    `json:"position"`
	DataType   string `json:"dataType"`
	Nullable   bool   `json:"nullable"`
	Default    string `json:"default,omitempty"`
	Comment    string `json:"comment,omitempty"`
	PrimaryKey bool   `json:"primaryKey,omitempty"`
}

// Kind implements Entity.
func (Column) Kind() string { return "columns" }

// Filters select what to extract. Patterns are globs over names ("*" and "?", matched with
// path.Match semantics): schemas as "schema", tables as "schema.table". An empty Include
// includes everything; Exclude wins over Include.
type Filters struct {
	IncludeSchemas []string `json:"includeSchemas,omitempty"`
	ExcludeSchemas []string `json:"excludeSchemas,omitempty"`
	IncludeTables  []string `json:"includeTables,omitempty"`
	ExcludeTables  []string `json:"excludeTables,omitempty"`
}
