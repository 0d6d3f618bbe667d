// Package connectors declares the data sources the agent can extract metadata from: each
// connector's connection fields (and which are sensitive), the metadata entity model, and the
// Source interface that drivers in the subpackages implement.
//
// This package holds declarations only and no drivers, so deterministic workflow code may import
// it to validate input.
package connectors

import (
	"context"
	"errors"
	"net"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

// FieldSpec declares one connection field of a connector.
type FieldSpec struct {
	Name string
	// Required fields must be present in the input.
	Required bool
	// Sensitive fields must come from a secret (see secrets.Resolve).
	Sensitive bool
	// Default is the value used when the field is absent ("" for none).
	Default string
	// Doc says what the field holds, for validation messages and the README.
	Doc string
}

// Spec declares a connector.
type Spec struct {
	Name   string
	Doc    string
	Fields []FieldSpec
	// SocketFile, when set, names the Unix socket file a "host" that is an absolute directory
	// stands for, as the connector's driver dials it (PostgreSQL: <dir>/.s.PGSQL.<port>).
	SocketFile func(dir string, port int) string
	// Kinds are the entity kinds the connector extracts, in AllKinds order. Every run writes a
	// file for each, empty when the source has none; the manifest lists the other kinds as
	// unsupported (Unsupported).
	Kinds []string
}

// Unsupported returns the kinds of AllKinds the connector cannot extract, in AllKinds order.
func (s Spec) Unsupported() []string {
	var out []string
	for _, k := range AllKinds {
		if !slices.Contains(s.Kinds, k) {
			out = append(out, k)
		}
	}
	return out
}

// Field returns the named field's declaration.
func (s Spec) Field(name string) (FieldSpec, bool) {
	i := slices.IndexFunc(s.Fields, func(f FieldSpec) bool { return f.Name == name })
	if i < 0 {
		return FieldSpec{}, false
	}
	return s.Fields[i], true
}

// Destination returns where a connection with creds would be dialled, in the canonical form
// netguard.ParseDestination gives: the "host" field and the "port" field (or its default), or, for a
// connector with SocketFile, the socket file in the directory an absolute "host" names. ok is
// false for connectors without a network destination (SQLite). err (InvalidInput, naming the
// field, never its value) says why host and port are not a destination the agent dials.
func (s Spec) Destination(creds Credentials) (dest netguard.Destination, ok bool, err error) {
	if _, has := s.Field("host"); !has {
		return netguard.Destination{}, false, nil
	}
	host := creds["host"].Reveal()
	p := strings.TrimSpace(creds["port"].Reveal())
	if p == "" {
		if f, has := s.Field("port"); has {
			p = f.Default
		}
	}
	port, perr := strconv.Atoi(p)
	if perr != nil || port < 1 || port > 65535 {
		return netguard.Destination{}, true, &secrets.Error{Kind: secrets.InvalidInput, Field: "port",
			Msg: s.Name + ": the value of field \"port\" is not a port number (1 to 65535); fix it in the input or the secret it comes from"}
	}
	if strings.HasPrefix(host, "/") && s.SocketFile != nil {
		dest, err = netguard.ParseDestination(netguard.NetworkUnix, s.SocketFile(host, port))
	} else {
		dest, err = netguard.ParseDestination(netguard.NetworkTCP, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if err != nil {
		var se *secrets.Error
		if errors.As(err, &se) {
			c := *se
			c.Field = "host"
			c.Msg = s.Name + ": the value of field \"host\" is not a destination the agent dials: " + strings.TrimPrefix(se.Msg, "destination: ")
			return netguard.Destination{}, true, &c
		}
		return netguard.Destination{}, true, err
	}
	return dest, true, nil
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
	"postgres": {
		Name:       "postgres",
		Doc:        "PostgreSQL 12 or later (tested with 15), through pgx",
		SocketFile: func(dir string, port int) string { return path.Join(dir, ".s.PGSQL."+strconv.Itoa(port)) },
		Kinds:      AllKinds,
		Fields: []FieldSpec{
			{Name: "host", Required: true, Doc: "server host name or IP address"},
			{Name: "port", Default: "5432", Doc: "server port"},
			{Name: "database", Required: true, Doc: "database to connect to"},
			{Name: "username", Required: true, Doc: "role to log in as (read access to the catalog is enough)"},
			{Name: "password", Sensitive: true, Doc: "the role's password"},
			{Name: "sslmode", Default: "require", Doc: "disable, allow, prefer, require, verify-ca or verify-full (default require: TLS, never a silent fall-back to plain text)"},
			{Name: "sslrootcert", Doc: "PEM of the CA that signed the server's certificate (verify-ca, verify-full)"},
			{Name: "sslcert", Doc: "PEM of a client certificate, for certificate authentication"},
			{Name: "sslkey", Sensitive: true, Doc: "PEM of the client certificate's private key"},
			{Name: "authMethod", Default: "password", Doc: "password; aws-iam: an RDS IAM authentication token the agent mints for each connection from its own AWS identity (needs awsRegion); gcp-iam: a Cloud SQL IAM login with the agent's Google access token; azure-entra: a Microsoft Entra token of the agent's Azure identity for Azure Database. Each needs sslmode verify-full or verify-ca, and no password"},
			{Name: "awsRegion", Doc: "the RDS or Aurora instance's region, such as eu-west-1 (authMethod aws-iam)"},
			{Name: "awsRoleArn", Doc: "an IAM role the agent assumes to mint the RDS token (authMethod aws-iam; optional)"},
			{Name: "awsExternalId", Doc: "the external id the role's trust policy requires (with awsRoleArn)"},
		},
	},
	"mysql": {
		Name: "mysql",
		Doc:  "MySQL 8 or MariaDB 10.6 or later (tested with MariaDB 10.11), through go-sql-driver/mysql",
		// Sequences are MariaDB's (10.3 and later); MySQL has none, and writes an empty file.
		Kinds: []string{KindDatabases, KindSchemas, KindTables, KindColumns, KindKeys, KindConstraints,
			KindIndexes, KindSequences, KindTriggers, KindRoutines, KindLineage},
		Fields: []FieldSpec{
			{Name: "host", Required: true, Doc: "server host name or IP address"},
			{Name: "port", Default: "3306", Doc: "server port"},
			{Name: "database", Doc: "database to connect to (optional; every database that passes the filters is extracted)"},
			{Name: "username", Required: true, Doc: "user to log in as (SELECT on the schemas to catalog, or SHOW VIEW and metadata access)"},
			{Name: "password", Sensitive: true, Doc: "the user's password"},
			{Name: "tls", Default: "required", Doc: "disable, preferred, required, verify-ca or verify-full (default required: TLS, never a silent fall-back to plain text)"},
			{Name: "tlsca", Doc: "PEM of the CA that signed the server's certificate (verify-ca, verify-full)"},
			{Name: "tlscert", Doc: "PEM of a client certificate"},
			{Name: "tlskey", Sensitive: true, Doc: "PEM of the client certificate's private key"},
			{Name: "authMethod", Default: "password", Doc: "password; aws-iam: an RDS IAM authentication token the agent mints for each connection from its own AWS identity (needs awsRegion); gcp-iam: a Cloud SQL IAM login with the agent's Google access token; azure-entra: a Microsoft Entra token of the agent's Azure identity for Azure Database. Each needs tls verify-full or verify-ca, and no password"},
			{Name: "awsRegion", Doc: "the RDS or Aurora instance's region, such as eu-west-1 (authMethod aws-iam)"},
			{Name: "awsRoleArn", Doc: "an IAM role the agent assumes to mint the RDS token (authMethod aws-iam; optional)"},
			{Name: "awsExternalId", Doc: "the external id the role's trust policy requires (with awsRoleArn)"},
		},
	},
	"sqlite": {
		Name: "sqlite",
		Doc:  "a SQLite database file on the agent's file system, opened read-only",
		Kinds: []string{KindDatabases, KindSchemas, KindTables, KindColumns, KindKeys, KindConstraints,
			KindIndexes, KindTriggers, KindLineage},
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
	// Extract streams the entities of the given schemas (tables that pass filters) to w in a
	// stable order: kind by kind, each ordered by schema and name. Writer errors are returned
	// unchanged. A run writes its Database entity exactly once (each connector documents which
	// call writes it).
	Extract(ctx context.Context, schemas []string, filters Filters, w EntityWriter) error
	// Close releases the connection.
	Close() error
}

// Fingerprinter is a Source that can tell, from cheap catalog reads, whether a schema's entities
// changed: Fingerprints returns, for each of the given schemas (which pass filters), a digest
// that is equal in two calls only if Extract would write the same entities for the schema (the
// first schema's digest covers the Database entity too, which its call writes). A digest may
// change when the entities do not (a false change costs an extraction); it must never stay
// when they change. previous is the state the last call returned for the same source (nil for
// none, and whatever it holds must be checked: it is read from the agent's disk); the returned
// state is given to the next call. Digests and state hold no credential, no name the entities
// would withhold, and nothing that would help guess either.
type Fingerprinter interface {
	Fingerprints(ctx context.Context, schemas []string, filters Filters, previous []byte) (digests map[string]string, state []byte, err error)
}

// PreflightReport describes what a successful preflight found. It holds no credentials.
type PreflightReport struct {
	// ServerVersion is the engine's version string.
	ServerVersion string `json:"serverVersion,omitempty"`
	// Identity is a non-secret description of the source, such as "postgres 15.18". It never
	// holds a field value: host, database and user names may be secrets.
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

// Entity kinds, in the order a run writes them. Each names its output file (<kind>.jsonl.gz).
const (
	KindDatabases   = "databases"
	KindSchemas     = "schemas"
	KindTables      = "tables"
	KindColumns     = "columns"
	KindKeys        = "keys"
	KindConstraints = "constraints"
	KindIndexes     = "indexes"
	KindSequences   = "sequences"
	KindTriggers    = "triggers"
	KindTypes       = "types"
	KindRoutines    = "routines"
	KindLineage     = "lineage"
)

// AllKinds are every entity kind, in the order a run writes them.
var AllKinds = []string{KindDatabases, KindSchemas, KindTables, KindColumns, KindKeys, KindConstraints,
	KindIndexes, KindSequences, KindTriggers, KindTypes, KindRoutines, KindLineage}

// Names and owners. Every entity carries Source, the label the workflow input gives the source
// (input "source": a name the operator chose, never read from a secret), and Database, the
// database's name. Host, user and database names may be secrets, so a connector writes the
// database's name only when the input gave it as a literal (OpenOptions.Literals), and an owner
// equal to the login role's name only when the user name was a literal: otherwise it leaves
// Owner empty and sets OwnerIsLoginRole, so the catalog still knows who owns the object without
// learning the name. Source is written by the agent after redaction (redact:"-"): it is the
// starter's own text, and comparing it with the run's secrets would tell the starter whether it
// holds one.

// Database is one database (catalog) of the source.
type Database struct {
	Source           string `json:"source,omitempty" redact:"-"`
	Name             string `json:"name"`
	Owner            string `json:"owner,omitempty"`
	OwnerIsLoginRole bool   `json:"ownerIsLoginRole,omitempty"`
	Encoding         string `json:"encoding,omitempty"`
	Collation        string `json:"collation,omitempty"`
	Comment          string `json:"comment,omitempty"`
	SizeBytes        *int64 `json:"sizeBytes,omitempty"`
}

// Kind implements Entity.
func (Database) Kind() string { return KindDatabases }

// Schema is one schema (a database, in MySQL terms) that passed the filters. Empty schemas are
// reported too.
type Schema struct {
	Source           string `json:"source,omitempty" redact:"-"`
	Database         string `json:"database,omitempty"`
	Name             string `json:"name"`
	Owner            string `json:"owner,omitempty"`
	OwnerIsLoginRole bool   `json:"ownerIsLoginRole,omitempty"`
	Comment          string `json:"comment,omitempty"`
	// Extension names the extension that owns the object (PostgreSQL), if one does.
	Extension string `json:"extension,omitempty"`
}

// Kind implements Entity.
func (Schema) Kind() string { return KindSchemas }

// Table types.
const (
	TableTypeTable            = "table"
	TableTypeView             = "view"
	TableTypeMaterializedView = "materialized_view"
	TableTypePartitioned      = "partitioned_table"
	TableTypePartition        = "partition"
	TableTypeForeign          = "foreign_table"
	TableTypeVirtual          = "virtual_table"
)

// Table is a table, view, materialized view, partitioned table, partition or foreign table.
type Table struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// Type is one of the TableType constants.
	Type             string `json:"type"`
	Owner            string `json:"owner,omitempty"`
	OwnerIsLoginRole bool   `json:"ownerIsLoginRole,omitempty"`
	Comment          string `json:"comment,omitempty"`
	// Definition is a view's or materialized view's query.
	Definition string `json:"definition,omitempty"`
	// ParentSchema and ParentTable name the partitioned table a partition belongs to;
	// PartitionBound is its bound ("FOR VALUES FROM (...) TO (...)").
	ParentSchema   string `json:"parentSchema,omitempty"`
	ParentTable    string `json:"parentTable,omitempty"`
	PartitionBound string `json:"partitionBound,omitempty"`
	// PartitionKey is a partitioned table's key ("RANGE (created_at)").
	PartitionKey string `json:"partitionKey,omitempty"`
	// Engine is the storage engine (MySQL).
	Engine string `json:"engine,omitempty"`
	// RowCount and SizeBytes are the engine's estimates, when it keeps them.
	RowCount  *int64 `json:"rowCount,omitempty"`
	SizeBytes *int64 `json:"sizeBytes,omitempty"`
	// Extension names the extension that owns the object (PostgreSQL), if one does.
	Extension string `json:"extension,omitempty"`
}

// Kind implements Entity.
func (Table) Kind() string { return KindTables }

// Column is one column of a table or view.
type Column struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Name     string `json:"name"`
	// Position is 1-based, in declaration order.
	Position int `json:"position"`
	// DataType is the full declared type, as the engine formats it ("character varying(255)",
	// "numeric(10,2)", "int(11) unsigned").
	DataType string `json:"dataType"`
	// TypeSchema and TypeName name the user-defined type (a Type entity: enum, domain,
	// composite or range) of the column, or of its array's elements; empty for built-in types.
	TypeSchema string `json:"typeSchema,omitempty"`
	TypeName   string `json:"typeName,omitempty"`
	// Length, Precision and Scale are the type's parameters, when it has them.
	Length    *int64 `json:"length,omitempty"`
	Precision *int64 `json:"precision,omitempty"`
	Scale     *int64 `json:"scale,omitempty"`
	// Nullable reports whether the column accepts NULL: false when it is declared NOT NULL or
	// its type is a NOT NULL domain.
	Nullable bool   `json:"nullable"`
	Default  string `json:"default,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// PrimaryKey reports membership in the primary key.
	PrimaryKey bool `json:"primaryKey,omitempty"`
	// Identity is "always" or "by_default" for identity columns, "auto_increment" for MySQL's.
	Identity string `json:"identity,omitempty"`
	// Generated is the expression of a generated column; GeneratedKind "stored" or "virtual".
	Generated     string `json:"generated,omitempty"`
	GeneratedKind string `json:"generatedKind,omitempty"`
}

// Kind implements Entity.
func (Column) Kind() string { return KindColumns }

// Key types.
const (
	KeyPrimary = "primary_key"
	KeyUnique  = "unique"
	KeyForeign = "foreign_key"
)

// Key is a primary, unique or foreign key. Columns are in key order; a foreign key's
// RefColumns pair with Columns position by position.
type Key struct {
	Source     string   `json:"source,omitempty" redact:"-"`
	Database   string   `json:"database,omitempty"`
	Schema     string   `json:"schema"`
	Table      string   `json:"table"`
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Columns    []string `json:"columns"`
	RefSchema  string   `json:"refSchema,omitempty"`
	RefTable   string   `json:"refTable,omitempty"`
	RefColumns []string `json:"refColumns,omitempty"`
	OnUpdate   string   `json:"onUpdate,omitempty"`
	OnDelete   string   `json:"onDelete,omitempty"`
}

// Kind implements Entity.
func (Key) Kind() string { return KindKeys }

// Constraint types.
const (
	ConstraintCheck     = "check"
	ConstraintExclusion = "exclusion"
)

// Constraint is a CHECK constraint of a table, or an exclusion constraint (PostgreSQL). Keys are
// Key entities; a domain's checks are in its Type.
type Constraint struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	// Name is the constraint's name; SQLite's unnamed checks are named "" (see Position).
	Name string `json:"name"`
	Type string `json:"type"`
	// Columns are the columns the constraint refers to, in table order (empty when the engine
	// does not record them: MySQL, SQLite).
	Columns []string `json:"columns"`
	// Expression is a check's boolean expression, as the engine deparses it (without CHECK).
	Expression string `json:"expression,omitempty"`
	// Definition is the whole constraint clause ("CHECK (price > 0)", "EXCLUDE USING gist (...)").
	Definition string `json:"definition"`
	// Validated is false for a constraint added NOT VALID (PostgreSQL) or NOT ENFORCED (MySQL).
	Validated bool `json:"validated"`
	// Position is the 1-based order of the constraint in its table's definition, where the engine
	// keeps no names (SQLite); 0 otherwise.
	Position int `json:"position,omitempty"`
}

// Kind implements Entity.
func (Constraint) Kind() string { return KindConstraints }

// Index is one index of a table.
type Index struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Name     string `json:"name"`
	// Columns are the indexed columns or expressions, in order.
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique"`
	Primary bool     `json:"primary,omitempty"`
	// Method is the access method ("btree", "hash", "gin", ...).
	Method string `json:"method,omitempty"`
	// Predicate is a partial index's WHERE clause.
	Predicate string `json:"predicate,omitempty"`
	// Definition is the engine's full statement, when it has one.
	Definition string `json:"definition,omitempty"`
}

// Kind implements Entity.
func (Index) Kind() string { return KindIndexes }

// Sequence is a sequence (PostgreSQL, MariaDB 10.3+). Bounds and steps are decimal strings:
// they may exceed what JSON numbers carry exactly.
type Sequence struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// DataType is the value type ("bigint", "integer", "smallint").
	DataType  string `json:"dataType"`
	Start     string `json:"start"`
	Increment string `json:"increment"`
	Min       string `json:"min"`
	Max       string `json:"max"`
	Cache     string `json:"cache"`
	Cycle     bool   `json:"cycle"`
	// OwnedBySchema, OwnedByTable and OwnedByColumn name the column the sequence belongs to
	// (OWNED BY, a serial column, an identity column).
	OwnedBySchema string `json:"ownedBySchema,omitempty"`
	OwnedByTable  string `json:"ownedByTable,omitempty"`
	OwnedByColumn string `json:"ownedByColumn,omitempty"`
	// Identity reports that the sequence is an identity column's (OwnedBy* name the column).
	Identity         bool   `json:"identity,omitempty"`
	Owner            string `json:"owner,omitempty"`
	OwnerIsLoginRole bool   `json:"ownerIsLoginRole,omitempty"`
	Comment          string `json:"comment,omitempty"`
	Extension        string `json:"extension,omitempty"`
}

// Kind implements Entity.
func (Sequence) Kind() string { return KindSequences }

// Trigger is a trigger on a table or view.
type Trigger struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Name     string `json:"name"`
	// Timing is "BEFORE", "AFTER" or "INSTEAD OF".
	Timing string `json:"timing"`
	// Events are "INSERT", "UPDATE", "DELETE", "TRUNCATE", in that order.
	Events []string `json:"events"`
	// Level is "ROW" or "STATEMENT".
	Level string `json:"level"`
	// Condition is the WHEN clause's expression, if any.
	Condition string `json:"condition,omitempty"`
	// FunctionSchema and Function name the function a PostgreSQL trigger executes.
	FunctionSchema string `json:"functionSchema,omitempty"`
	Function       string `json:"function,omitempty"`
	// Body is the statement a MySQL or SQLite trigger executes.
	Body string `json:"body,omitempty"`
	// Definition is the full CREATE TRIGGER statement: PostgreSQL's pg_get_triggerdef, SQLite's
	// stored text; MySQL's is assembled from information_schema ("CREATE TRIGGER `name` BEFORE
	// INSERT ON `table` FOR EACH ROW <body>"), names backquoted and without DEFINER, so the
	// whitespace and quoting of the original statement are not kept (Body is exact).
	Definition string `json:"definition"`
	// Enabled is "enabled", "disabled", "replica" or "always" (PostgreSQL's session replication
	// role settings); "enabled" where the engine cannot disable triggers.
	Enabled string `json:"enabled"`
	// Order is the trigger's position among those of the same timing and event (MySQL); 0 where
	// the engine orders them by name.
	Order   int    `json:"order,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Kind implements Entity.
func (Trigger) Kind() string { return KindTriggers }

// User-defined type kinds.
const (
	TypeEnum      = "enum"
	TypeDomain    = "domain"
	TypeComposite = "composite"
	TypeRange     = "range"
)

// Type is a user-defined type (PostgreSQL): an enum, a domain, a composite or a range type.
// Columns of the type point to it (Column.TypeSchema, Column.TypeName).
type Type struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// Type is one of the Type constants.
	Type string `json:"type"`
	// Labels are an enum's labels, in their sort order.
	Labels []string `json:"labels,omitempty"`
	// BaseType is a domain's base type, or a range's subtype, formatted as a column's DataType.
	BaseType string `json:"baseType,omitempty"`
	// NotNull and Default are a domain's.
	NotNull bool   `json:"notNull,omitempty"`
	Default string `json:"default,omitempty"`
	// Checks are a domain's CHECK constraints, by name.
	Checks []TypeCheck `json:"checks,omitempty"`
	// Attributes are a composite type's, in order.
	Attributes       []TypeAttribute `json:"attributes,omitempty"`
	Owner            string          `json:"owner,omitempty"`
	OwnerIsLoginRole bool            `json:"ownerIsLoginRole,omitempty"`
	Comment          string          `json:"comment,omitempty"`
	Extension        string          `json:"extension,omitempty"`
}

// TypeCheck is one CHECK constraint of a domain.
type TypeCheck struct {
	Name       string `json:"name"`
	Expression string `json:"expression"`
	Validated  bool   `json:"validated"`
}

// TypeAttribute is one attribute of a composite type.
type TypeAttribute struct {
	Name     string `json:"name"`
	DataType string `json:"dataType"`
}

// Kind implements Entity.
func (Type) Kind() string { return KindTypes }

// Routine types.
const (
	RoutineFunction  = "function"
	RoutineProcedure = "procedure"
	RoutineAggregate = "aggregate"
)

// Routine is a function, procedure or aggregate.
type Routine struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// Type is RoutineFunction, RoutineProcedure or RoutineAggregate.
	Type string `json:"type"`
	// Signature is the argument list ("a integer, b text"); overloads differ by it.
	Signature  string `json:"signature"`
	ReturnType string `json:"returnType,omitempty"`
	Language   string `json:"language,omitempty"`
	// Definition is the routine's body as stored (the source of an SQL or PL routine, the
	// symbol of a C one); an aggregate has none.
	Definition string `json:"definition,omitempty"`
	// Volatility is "immutable", "stable" or "volatile" (PostgreSQL); MySQL's DETERMINISTIC
	// routines are "immutable", others "volatile".
	Volatility string `json:"volatility,omitempty"`
	// SecurityDefiner reports that the routine runs with its owner's rights (SECURITY DEFINER,
	// MySQL's SQL SECURITY DEFINER).
	SecurityDefiner  bool   `json:"securityDefiner,omitempty"`
	Owner            string `json:"owner,omitempty"`
	OwnerIsLoginRole bool   `json:"ownerIsLoginRole,omitempty"`
	Comment          string `json:"comment,omitempty"`
	Extension        string `json:"extension,omitempty"`
}

// Kind implements Entity.
func (Routine) Kind() string { return KindRoutines }

// Lineage transformation kinds.
const (
	// LineageDirect: the view column is the source column, renamed at most.
	LineageDirect = "direct"
	// LineageExpression: the view column is computed from the source columns (an expression,
	// a function, an aggregate, a CASE).
	LineageExpression = "expression"
)

// Lineage is the lineage of one view or materialized view: the relations it reads and, per
// view column, the source columns that feed it. Where the definition could not be analysed,
// Problem says why and nothing is guessed (Upstream and Columns are empty).
type Lineage struct {
	Source   string `json:"source,omitempty" redact:"-"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema"`
	View     string `json:"view"`
	// Upstream are the tables and views the view reads, sorted by schema and name.
	Upstream []RelationRef `json:"upstream"`
	// Columns are the view's columns, in order, with their sources.
	Columns []ColumnLineage `json:"columns"`
	// Method says how lineage was found: "catalog" (the engine's dependency records) or
	// "parser" (the view's definition, parsed).
	Method string `json:"method"`
	// Problem, when set, says why the definition could not be analysed.
	Problem string `json:"problem,omitempty"`
}

// RelationRef names a table or view.
type RelationRef struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

// ColumnLineage is one view column and the columns it comes from.
type ColumnLineage struct {
	Column string `json:"column"`
	// Sources are the source columns, sorted; empty for a constant.
	Sources []ColumnRef `json:"sources"`
	// Transformation is LineageDirect or LineageExpression.
	Transformation string `json:"transformation"`
}

// ColumnRef names a column of a table or view.
type ColumnRef struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Column string `json:"column"`
}

// Kind implements Entity.
func (Lineage) Kind() string { return KindLineage }

// SchemaOf returns the schema an entity belongs to: a Schema's own name, the Schema field of
// every other kind of the model; ok is false for a Database, which belongs to no schema, and
// for a type this package does not declare.
func SchemaOf(e Entity) (schema string, ok bool) {
	switch x := e.(type) {
	case Database:
		return "", false
	case Schema:
		return x.Name, true
	case Table:
		return x.Schema, true
	case Column:
		return x.Schema, true
	case Key:
		return x.Schema, true
	case Constraint:
		return x.Schema, true
	case Index:
		return x.Schema, true
	case Sequence:
		return x.Schema, true
	case Trigger:
		return x.Schema, true
	case Type:
		return x.Schema, true
	case Routine:
		return x.Schema, true
	case Lineage:
		return x.Schema, true
	}
	return "", false
}

// Filters select what to extract. Patterns are globs (see Glob): "*" matches any run of
// characters, "?" one character, everything else itself. Databases match as "database",
// schemas as "schema", tables as "schema.table", temp tables by table name alone. An empty
// include list includes everything; exclusion wins. Patterns are applied in Go to the names the
// catalog returns: they never reach SQL as text.
type Filters struct {
	IncludeDatabases []string `json:"includeDatabases,omitempty"`
	ExcludeDatabases []string `json:"excludeDatabases,omitempty"`
	IncludeSchemas   []string `json:"includeSchemas,omitempty"`
	ExcludeSchemas   []string `json:"excludeSchemas,omitempty"`
	IncludeTables    []string `json:"includeTables,omitempty"`
	ExcludeTables    []string `json:"excludeTables,omitempty"`
	// TempTables are table-name patterns for scratch tables to skip everywhere, such as "tmp_*".
	TempTables []string `json:"tempTables,omitempty"`
	// IncludeSystemSchemas extracts the engine's own schemas (pg_catalog, information_schema,
	// mysql, sys, ...), which are skipped by default.
	IncludeSystemSchemas bool `json:"includeSystemSchemas,omitempty"`
}

// ContextError is a connector's error for a ctx that ended: SourceUnavailable (retried), wrapping
// ctxErr so errors.Is(err, context.DeadlineExceeded) holds. connector prefixes the message.
func ContextError(connector string, ctxErr error) error {
	msg := connector + ": the step was cancelled before the catalog was read"
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		msg = connector + ": the catalog was not read before the deadline; check that the source is reachable from the agent, or raise the activity timeout for a large catalog"
	}
	return &secrets.Error{Kind: secrets.SourceUnavailable, Msg: msg, Cause: ctxErr}
}
