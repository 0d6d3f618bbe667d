// Package postgres is the connector for PostgreSQL 12 or later, through pgx v5 (no database/sql).
//
// One Source is one connection to the database that field "database" names. Every connection
// field may have come from a secret, so no field value (host, port, database, username,
// password, PEMs) ever appears in an error, a preflight report or an entity: errors are
// *secrets.Error values with this package's own messages and a short code (a SQLSTATE, an errno
// name, "tls") as Detail, and their Cause is a sanitized stand-in (a bare errno, a context error,
// a *pgconn.PgError that keeps only severity and code), never the driver's text.
//
// The catalog is read from pg_catalog, not information_schema (which hides objects the role has
// no privilege on), with a handful of set-based queries per Extract call, one per entity kind,
// each filtered by "nspname = ANY($1)" and streamed row by row to the writer. Filter patterns are
// applied in Go to the names the catalog returns; they never reach SQL text.
//
// Connection security: sslmode defaults to require (TLS, never a silent fall-back to plain
// text); prefer and allow are used only when chosen. A password never goes to the server in clear
// text or as an MD5 digest unless the server is authenticated. Each connection attempt (prefer
// tries TLS then plain text, allow the reverse) gets its own rule:
//   - over verified TLS (verify-ca, verify-full, require with sslrootcert, sslrootcert "system"),
//     any authentication method the server asks for is answered;
//   - over TLS that does not verify the server, with a password: only SCRAM-SHA-256 with channel
//     binding (SCRAM-SHA-256-PLUS), so that a TLS-terminating impersonator can neither read the
//     password nor relay the exchange;
//   - without TLS (disable, the plain-text attempt of prefer and allow, a Unix socket), with a
//     password: only SCRAM-SHA-256;
//   - without a password: any method (trust, peer and certificate authentication send none);
//   - when agent policy allows legacy password authentication for the destination
//     (OpenOptions.LegacyPasswordAuth): any method, with channel binding when the server offers it.
//
// A server that asks for anything else (clear text, MD5, SCRAM without channel binding where it
// is required, or no authentication at all) is refused before anything derived from the password
// is sent, with PolicyDenied, and no further attempt is made.
//
// Agent-side libpq settings (PGHOST, PGSSLMODE, ~/.pgpass, ~/.postgresql/*) are neutralized: the
// connection is built only from the connector's fields. PGSERVICE is the exception pgx gives no
// way around: if it is set on the agent and names no service, Open fails with InvalidInput.
package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Connection field names (see connectors.Lookup("postgres")).
const (
	FieldHost        = "host"
	FieldPort        = "port"
	FieldDatabase    = "database"
	FieldUsername    = "username"
	FieldPassword    = "password"
	FieldSSLMode     = "sslmode"
	FieldSSLRootCert = "sslrootcert"
	FieldSSLCert     = "sslcert"
	FieldSSLKey      = "sslkey"
)

// MinServerVersionNum is the oldest server this connector reads (server_version_num): the
// catalog queries use pg_attribute.attgenerated, new in PostgreSQL 12.
const MinServerVersionNum = 120000

// ConnectTimeout bounds one connection attempt when ctx allows longer.
const ConnectTimeout = 30 * time.Second

// ApplicationName is the application_name the connection reports to the server.
const ApplicationName = "secure-agent"

// cancelDeadline is how long a query may go on after its ctx ended: a cancel request is sent at
// once, and after this delay the socket's deadline breaks the wait regardless.
const cancelDeadline = 2 * time.Second

// Source is an open connection to one PostgreSQL database. It is safe for use by one goroutine
// at a time.
type Source struct {
	conn       *pgx.Conn
	versionNum int
	version    string
	// names are the values of the fields that could name things in entities (host, database,
	// username) and which of them were literals: they decide which owners and database name
	// entities carry (see fieldNames).
	names fieldNames
}

var _ connectors.Source = (*Source)(nil)

// seedConnString is parsed only to obtain a pgx config (pgx requires one made by ParseConfig).
// It names every setting that pgx would otherwise take from the agent's PG* environment
// variables or home directory (passfile, client certificates, root.crt), so none applies; the
// connection's real settings are then set from the fields. It holds no field value.
const seedConnString = "host=localhost port=5432 dbname=postgres user=postgres password=unused passfile='' " +
	"sslmode=disable sslrootcert='' sslcert='' sslkey='' sslcertmode=allow sslnegotiation=postgres " +
	"target_session_attrs=any channel_binding=prefer require_auth='' min_protocol_version=3.0 " +
	"max_protocol_version=3.0 connect_timeout=30"

// Open connects to the database that creds name and checks that the server is PostgreSQL 12
// or later. Fields: host (a name, an IP address, or an absolute Unix-socket directory), port
// (default 5432), database, username, password, sslmode (default require), and the PEMs
// sslrootcert (or the word "system" for the agent's trusted roots), sslcert and sslkey. The
// password is sent only as the package doc's connection security rules allow; opts.Dialer dials
// every connection and opts.LegacyPasswordAuth relaxes those rules.
//
// Errors: missing or malformed fields, a PEM that does not parse, an unknown database, a host
// name that does not resolve and a TLS failure (refused, unverifiable certificate) are
// InvalidInput; a server asking for an authentication method the rules refuse is PolicyDenied; a
// refused login is SourceAuthFailed; an unreachable or overloaded server and the end of ctx are
// SourceUnavailable.
func Open(ctx context.Context, creds connectors.Credentials, opts connectors.OpenOptions) (*Source, error) {
	attempts, names, err := connConfigs(ctx, creds, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	conn, err := connect(ctx, attempts)
	if err != nil {
		err = classify(ctx, err, phaseConnect)
		var se *secrets.Error
		method := strings.TrimSpace(creds[FieldAuthMethod].Reveal())
		if errors.As(err, &se) && se.Kind == secrets.SourceAuthFailed && method == AuthAzureEntra {
			return nil, &secrets.Error{Kind: secrets.SourceAuthFailed, Field: FieldAuthMethod, Detail: se.Detail,
				Msg: "postgres: Azure Database refused the Entra token: enable Microsoft Entra authentication on the server, create the role for the agent's identity (pgaadauth_create_principal) and log in with that role's name"}
		}
		if errors.As(err, &se) && se.Kind == secrets.SourceAuthFailed && method == AuthGCPIAM {
			return nil, &secrets.Error{Kind: secrets.SourceAuthFailed, Field: FieldAuthMethod, Detail: se.Detail,
				Msg: "postgres: Cloud SQL refused the IAM login: the instance needs the flag cloudsql.iam_authentication on, the IAM user must be added to it (username without .gserviceaccount.com), and the agent's identity needs roles/cloudsql.instanceUser"}
		}
		if errors.As(err, &se) && se.Kind == secrets.SourceAuthFailed && method == AuthAWSIAM {
			return nil, &secrets.Error{Kind: secrets.SourceAuthFailed, Field: FieldAuthMethod, Detail: se.Detail,
				Msg: "postgres: the server refused the RDS IAM token for this role: grant the role rds_iam, allow the agent's AWS identity rds-db:connect on this database user, and check awsRegion and the host (the token is signed for host:port)"}
		}
		return nil, err
	}
	s := &Source{conn: conn, names: names}
	s.version = conn.PgConn().ParameterStatus("server_version")
	s.versionNum = versionNum(s.version)
	if s.versionNum != 0 && s.versionNum < MinServerVersionNum {
		_ = s.Close()
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Detail: "0A000",
			Msg: fmt.Sprintf("postgres: the server runs PostgreSQL %s; this connector needs PostgreSQL 12 or later", shortVersion(s.version))}
	}
	return s, nil
}

// connConfigs builds from the fields the pgx configuration of each connection attempt, in the
// order to try them (see connect): one per TLS setting that sslmode allows, each with its own
// authentication rule (authRule) and no Fallbacks. Its errors name fields, never values.
func connConfigs(ctx context.Context, creds connectors.Credentials, opts connectors.OpenOptions) ([]*pgx.ConnConfig, fieldNames, error) {
	get := func(name string) string {
		if v, ok := creds[name]; ok {
			return v.Reveal()
		}
		return ""
	}
	spec, _ := connectors.Lookup("postgres")
	for _, f := range spec.Fields {
		v := creds[f.Name]
		if strings.IndexByte(string(v), 0) >= 0 {
			return nil, fieldNames{}, invalidField(f.Name, "contains a NUL byte")
		}
		if f.Required && len(v) == 0 {
			return nil, fieldNames{}, invalidField(f.Name, "is required and is empty or missing")
		}
	}
	host, database, user := get(FieldHost), get(FieldDatabase), get(FieldUsername)
	names := newFieldNames(host, database, user, opts)

	port := uint16(5432)
	if p := strings.TrimSpace(get(FieldPort)); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fieldNames{}, invalidField(FieldPort, "is not a port number (1 to 65535)")
		}
		port = uint16(n)
	}
	mode := strings.ToLower(strings.TrimSpace(get(FieldSSLMode)))
	if mode == "" {
		mode = "require" // as the connector's spec says: TLS, never a silent fall-back to plain text
	}
	attempts, err := buildTLS(host, mode, creds[FieldSSLRootCert], creds[FieldSSLCert], creds[FieldSSLKey])
	if err != nil {
		return nil, fieldNames{}, err
	}

	cfg, err := pgx.ParseConfig(seedConnString)
	if err != nil {
		// Only the agent's environment can make the fixed seed fail: PGSERVICE naming a
		// service that does not exist.
		return nil, fieldNames{}, &secrets.Error{Kind: secrets.InvalidInput,
			Msg: "postgres: the agent's libpq environment could not be applied (is PGSERVICE set on the agent?); unset PG* variables in the agent's environment"}
	}
	password, err := iamPassword(ctx, strings.TrimSpace(get(FieldAuthMethod)), get, host, port, user, attempts)
	if err != nil {
		return nil, fieldNames{}, err
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = host, port, database, user, password
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil // pgx would apply one RequireAuth to every fallback: see connect
	// client_encoding: pgx reads text as UTF-8, whatever the role's own setting says.
	cfg.RuntimeParams = map[string]string{"application_name": ApplicationName, "client_encoding": "UTF8"}
	cfg.KerberosSrvName, cfg.KerberosSpn = "", ""
	cfg.ValidateConnect, cfg.AfterConnect = nil, nil
	cfg.OnNotice, cfg.OnNotification = nil, nil
	cfg.ConnectTimeout = ConnectTimeout
	cfg.SSLCertMode = "allow"
	cfg.Tracer = nil
	// Every connection goes through the options' Dialer, which judges exactly what is dialled
	// and resolves names itself: pgx must not resolve the host on its own.
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.DialFunc = opts.DialContext
	// Unnamed prepared statements: safe behind transaction-pooling proxies, and the connector
	// runs only a handful of queries.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	cfg.StatementCacheCapacity, cfg.DescriptionCacheCapacity = 0, 0
	// When ctx ends mid-query, ask the server to cancel it, and break the wait on the socket
	// shortly after in any case.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	configs := make([]*pgx.ConnConfig, 0, len(attempts))
	for _, a := range attempts {
		c := cfg.Copy()
		c.TLSConfig = a.config
		c.RequireAuth, c.ChannelBinding = authRule(a, cfg.Password != "", opts.LegacyPasswordAuth)
		configs = append(configs, c)
	}
	return configs, names, nil
}

func invalidField(field, what string) error {
	return &secrets.Error{Kind: secrets.InvalidInput, Field: field,
		Msg: fmt.Sprintf("postgres: the value of field %q %s; fix it in the input or the secret it comes from", field, what)}
}

// buildTLS returns the attempts to make in order (a nil config means plain text), as libpq's
// sslmode does: disable [plain]; allow [plain, tls]; prefer [tls, plain]; require [tls]
// (verified like verify-ca when sslrootcert is given); verify-ca [tls verifying the chain];
// verify-full [tls verifying the chain and the host name]. An attempt is verified exactly when
// its TLS verifies the server's certificate (verify-ca, verify-full, and the modes that become
// them). A Unix-socket host never uses TLS.
func buildTLS(host, mode string, rootPEM, certPEM, keyPEM []byte) ([]attempt, error) {
	switch mode {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return nil, invalidField(FieldSSLMode, "is not one of disable, allow, prefer, require, verify-ca, verify-full")
	}
	// The PEMs are checked whenever they are given, even where the mode ignores them: a PEM
	// that does not parse is a configuration mistake worth reporting.
	var roots *x509.CertPool
	if len(rootPEM) > 0 {
		if strings.TrimSpace(string(rootPEM)) == "system" {
			pool, err := x509.SystemCertPool()
			if err != nil {
				return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLRootCert, Detail: "tls",
					Msg: "postgres: sslrootcert is \"system\" but the agent's trusted roots cannot be loaded; give the CA's PEM instead"}
			}
			roots = pool
			if mode != "disable" && mode != "allow" && mode != "prefer" {
				mode = "verify-full" // as libpq does for sslrootcert=system
			}
		} else {
			roots = x509.NewCertPool()
			if !appendPEMCerts(roots, rootPEM) {
				return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLRootCert, Detail: "tls",
					Msg: "postgres: sslrootcert holds no PEM certificate that parses; give the PEM of the CA that signed the server's certificate"}
			}
		}
	}
	var clientCerts []tls.Certificate
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		c, err := clientCertificate(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		clientCerts = []tls.Certificate{c}
	case len(certPEM) > 0:
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLKey,
			Msg: "postgres: sslcert is set but sslkey is not; certificate authentication needs both"}
	case len(keyPEM) > 0:
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLCert,
			Msg: "postgres: sslkey is set but sslcert is not; certificate authentication needs both"}
	}
	if strings.HasPrefix(host, "/") || mode == "disable" {
		return []attempt{{}}, nil
	}
	if (mode == "verify-ca" || mode == "verify-full") && roots == nil {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLRootCert,
			Msg: "postgres: sslmode " + mode + " needs the CA to verify against; set sslrootcert to the CA's PEM, or to \"system\" for the agent's trusted roots"}
	}
	if mode == "require" && roots != nil {
		mode = "verify-ca" // libpq: require with a root certificate verifies like verify-ca
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: clientCerts}
	if net.ParseIP(host) == nil {
		c.ServerName = host // SNI, as libpq's sslsni=1; verify-full also checks it
	}
	switch mode {
	case "allow", "prefer", "require":
		c.InsecureSkipVerify = true // encryption without authentication of the server, as in libpq
	case "verify-ca":
		// Verify the chain but not the name: crypto/tls has no such mode, so skip its checks and
		// verify in VerifyConnection.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errTLSVerify
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return errTLSVerify
			}
			return nil
		}
	case "verify-full":
		c.RootCAs = roots
		if c.ServerName == "" {
			c.ServerName = host // an IP address: crypto/tls checks the certificate's IP SANs
		}
	}
	switch mode {
	case "allow":
		return []attempt{{}, {config: c}}, nil
	case "prefer":
		return []attempt{{config: c}, {}}, nil
	case "require":
		return []attempt{{config: c}}, nil
	default: // verify-ca, verify-full
		return []attempt{{config: c, verified: true}}, nil
	}
}

// errTLSVerify is the cause of a server certificate that does not verify against sslrootcert.
var errTLSVerify = errors.New("postgres: the server's certificate does not verify against sslrootcert")

// appendPEMCerts adds every CERTIFICATE block of data to pool, reporting whether there was at
// least one and all of them parsed.
func appendPEMCerts(pool *x509.CertPool, data []byte) bool {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return false
		}
		pool.AddCert(c)
		n++
	}
	return n > 0
}

func clientCertificate(certPEM, keyPEM []byte) (tls.Certificate, error) {
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLCert, Detail: "tls",
			Msg: "postgres: sslcert is not a PEM certificate; give the PEM of the client certificate"}
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		return tls.Certificate{}, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLKey, Detail: "tls",
			Msg: "postgres: sslkey is not a PEM private key; give the PEM of the client certificate's key"}
	}
	//lint:ignore SA1019 detecting (not decrypting) legacy encrypted PEM keys
	if b.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(b) { //nolint:staticcheck
		return tls.Certificate{}, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLKey, Detail: "tls",
			Msg: "postgres: sslkey is encrypted; store the key unencrypted in the secret (the secret store protects it)"}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLKey, Detail: "tls",
			Msg: "postgres: sslkey does not parse or does not match sslcert; give the key of the client certificate"}
	}
	return c, nil
}

// versionNum turns a server_version such as "15.18 (Debian 15.18-0+deb12u1)" or "12.3" into
// server_version_num form (150018, 120003); 0 if it cannot be read.
func versionNum(v string) int {
	v = shortVersion(v)
	major, rest, _ := strings.Cut(v, ".")
	m, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	minor, _ := strconv.Atoi(strings.TrimRightFunc(rest, func(r rune) bool { return r < '0' || r > '9' }))
	if m < 10 {
		return 0 // 9.x numbering; older than anything supported either way
	}
	return m*10000 + minor
}

// shortVersion is the leading version number of server_version ("15.18", "16beta1").
func shortVersion(v string) string {
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	return v
}

// Preflight checks the connection and the catalog with default filters: see PreflightFor.
func (s *Source) Preflight(ctx context.Context) (*connectors.PreflightReport, error) {
	return s.PreflightFor(ctx, connectors.Filters{})
}

// catalogTables are the catalogs the extraction reads; a role without SELECT on one (a
// hardened server may revoke it from PUBLIC) gets an incomplete or failed extraction.
var catalogTables = []string{
	"pg_catalog.pg_namespace", "pg_catalog.pg_class", "pg_catalog.pg_attribute", "pg_catalog.pg_attrdef",
	"pg_catalog.pg_type", "pg_catalog.pg_constraint", "pg_catalog.pg_index", "pg_catalog.pg_am",
	"pg_catalog.pg_inherits", "pg_catalog.pg_proc", "pg_catalog.pg_language", "pg_catalog.pg_description",
	"pg_catalog.pg_shdescription", "pg_catalog.pg_database", "pg_catalog.pg_sequence", "pg_catalog.pg_trigger",
	"pg_catalog.pg_enum", "pg_catalog.pg_range", "pg_catalog.pg_depend", "pg_catalog.pg_extension",
	"pg_catalog.pg_rewrite",
}

// catalogFunctions are the catalog functions the extraction calls.
var catalogFunctions = []string{
	"pg_catalog.pg_get_userbyid(oid)", "pg_catalog.obj_description(oid,name)",
	"pg_catalog.col_description(oid,integer)", "pg_catalog.shobj_description(oid,name)",
	"pg_catalog.format_type(oid,integer)", "pg_catalog.pg_get_expr(pg_node_tree,oid)",
	"pg_catalog.pg_get_viewdef(oid)", "pg_catalog.pg_get_partkeydef(oid)",
	"pg_catalog.pg_get_indexdef(oid)", "pg_catalog.pg_get_indexdef(oid,integer,boolean)",
	"pg_catalog.pg_get_function_arguments(oid)", "pg_catalog.pg_get_function_result(oid)",
	"pg_catalog.pg_get_function_identity_arguments(oid)", "pg_catalog.pg_get_function_sqlbody(oid)",
	"pg_catalog.pg_get_constraintdef(oid)", "pg_catalog.pg_get_triggerdef(oid)",
}

// PreflightFor reads the server version, checks that the catalog is readable, and lists by name
// the privileges the role lacks for a complete extraction of the schemas that pass filters:
// "CONNECT on the database", "USAGE on schema <name>" for each such schema, "SELECT on
// pg_catalog.<catalog>" and "EXECUTE on <catalog function>" for what the extraction reads. The
// report's Identity is "postgres <version>": it never names the host, database or role.
func (s *Source) PreflightFor(ctx context.Context, filters connectors.Filters) (*connectors.PreflightReport, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	// One round trip: the version, and what the role may connect to, read and call.
	var version string
	var num int
	var connect bool
	var missingTables, missingFunctions []string
	batch := &pgx.Batch{}
	batch.Queue(`SELECT current_setting('server_version'), current_setting('server_version_num')::int,
	has_database_privilege(current_database(), 'CONNECT')`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&version, &num, &connect)
	})
	batch.Queue(`SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)
		WHERE NOT has_table_privilege(t, 'SELECT') ORDER BY i`, catalogTables).Query(func(rows pgx.Rows) error {
		var err error
		missingTables, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	batch.Queue(`SELECT f FROM unnest($1::text[]) WITH ORDINALITY AS u(f, i)
		WHERE to_regprocedure(f) IS NOT NULL AND NOT has_function_privilege(to_regprocedure(f), 'EXECUTE') ORDER BY i`, catalogFunctions).Query(func(rows pgx.Rows) error {
		var err error
		missingFunctions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err := s.conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, classify(ctx, err, phaseQuery)
	}
	s.version, s.versionNum = version, num
	report := &connectors.PreflightReport{ServerVersion: version, Identity: "postgres " + shortVersion(version)}
	if !connect {
		report.MissingPrivileges = append(report.MissingPrivileges, "CONNECT on the database")
	}
	for _, t := range missingTables {
		report.MissingPrivileges = append(report.MissingPrivileges, "SELECT on "+t)
	}
	for _, f := range missingFunctions {
		report.MissingPrivileges = append(report.MissingPrivileges, "EXECUTE on function "+f)
	}

	// The catalog must be readable: list the schemas (this also proves pg_namespace works).
	schemas, err := s.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range schemas {
		if n.usage || !schemaWanted(n.name, filters) {
			continue
		}
		report.MissingPrivileges = append(report.MissingPrivileges, "USAGE on schema "+n.quoted)
	}
	return report, nil
}

// namespace is one row of pg_namespace.
type namespace struct {
	name, owner, comment string
	quoted               string // quote_ident(name), for GRANT statements in messages
	usage                bool   // the role has USAGE on it
	extension            string // the extension that owns the schema, if one does
	oid                  uint32
}

const namespacesQuery = `SELECT n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text,
	COALESCE(pg_catalog.obj_description(n.oid, 'pg_namespace'), ''), pg_catalog.quote_ident(n.nspname),
	pg_catalog.has_schema_privilege(n.oid, 'USAGE'), COALESCE(x.extname::text, ''), n.oid
FROM pg_catalog.pg_namespace AS n
LEFT JOIN pg_catalog.pg_depend AS xd ON xd.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
	AND xd.objid = n.oid AND xd.objsubid = 0 AND xd.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension AS x ON x.oid = xd.refobjid`

// namespaces lists every schema of the database (a few hundred at most in practice).
func (s *Source) namespaces(ctx context.Context) ([]namespace, error) {
	return queryNamespaces(ctx, s.conn)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryNamespaces(ctx context.Context, q querier) ([]namespace, error) {
	rows, err := q.Query(ctx, namespacesQuery)
	if err != nil {
		return nil, classify(ctx, err, phaseQuery)
	}
	defer rows.Close()
	var out []namespace
	for rows.Next() {
		var n namespace
		if err := rows.Scan(&n.name, &n.owner, &n.comment, &n.quoted, &n.usage, &n.extension, &n.oid); err != nil {
			return nil, classify(ctx, err, phaseQuery)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, phaseQuery)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// IsSystemSchema reports whether a schema is PostgreSQL's own: information_schema and every
// pg_* schema (pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N; users cannot create pg_*
// schemas).
func IsSystemSchema(name string) bool {
	return name == "information_schema" || strings.HasPrefix(name, "pg_")
}

func schemaWanted(name string, filters connectors.Filters) bool {
	if IsSystemSchema(name) && !filters.IncludeSystemSchemas {
		return false
	}
	return filters.SchemaIncluded(name)
}

// checkDatabaseFilters refuses database filters: a Source reads only the database that field
// "database" names. Matching the patterns against that name would let whoever writes filters
// learn the name, which may be a secret, one pattern at a time.
func checkDatabaseFilters(filters connectors.Filters) error {
	if len(filters.IncludeDatabases) == 0 && len(filters.ExcludeDatabases) == 0 {
		return nil
	}
	return &secrets.Error{Kind: secrets.InvalidInput,
		Msg: "postgres: filters.includeDatabases and filters.excludeDatabases are not supported: the connector extracts the one database that field \"database\" names; remove them and start one extraction per database"}
}

// Schemas lists the schemas that pass filters, sorted (byte order). PostgreSQL's own schemas
// are left out unless filters.IncludeSystemSchemas is set. Database filters are refused with
// InvalidInput (see checkDatabaseFilters).
func (s *Source) Schemas(ctx context.Context, filters connectors.Filters) ([]string, error) {
	if err := checkDatabaseFilters(filters); err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	all, err := s.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, n := range all {
		if schemaWanted(n.name, filters) {
			out = append(out, n.name)
		}
	}
	return out, nil
}

// usable reports a closed Source or an ended ctx.
func (s *Source) usable(ctx context.Context) error {
	if s == nil || s.conn == nil {
		return &secrets.Error{Kind: secrets.SourceUnavailable, Msg: "postgres: the source is closed; open it again"}
	}
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	return nil
}

// Close releases the connection. It is safe to call more than once.
func (s *Source) Close() error {
	if s == nil || s.conn == nil {
		return nil
	}
	conn := s.conn
	s.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx) // a failed Terminate still closes the socket; nothing for the caller to do
	return nil
}

// Phases of a failure, for messages.
const (
	phaseConnect = "connect"
	phaseQuery   = "query"
)

// classify turns a driver error into a *secrets.Error. Its message is this package's own, its
// Detail a short code, and its Cause a sanitized stand-in: the driver's text names the host,
// database and role, so it is never kept.
func classify(ctx context.Context, err error, phase string) error {
	if err == nil {
		return nil
	}
	var se *secrets.Error
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return contextError(ctxErr)
	}
	// Before server errors: a refusal by the password rule ends the attempts, and is what the
	// user must act on even when an earlier attempt failed otherwise.
	if refused := authRefusal(err); refused != nil {
		return refused
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgError(pe, phase)
	}
	unavailable := func(detail, msg string, cause error) error {
		return &secrets.Error{Kind: secrets.SourceUnavailable, Detail: detail, Msg: "postgres: " + msg, Cause: cause}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Our own connect timeout, not the caller's ctx.
		return unavailable("timeout", "the server did not answer in time; check that it is reachable from the agent (host, port, firewall); the step is retried", context.DeadlineExceeded)
	}
	for _, e := range []syscall.Errno{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, e) {
			return unavailable(errnoName(e), "the server could not be reached or dropped the connection; check host, port and that the server runs and accepts connections from the agent; the step is retried", e)
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldHost, Detail: "ENOTFOUND", Cause: errWithheld,
				Msg: "postgres: the host name does not resolve; check field \"host\""}
		}
		return unavailable("DNS", "the host name could not be resolved right now; the step is retried", errWithheld)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "remote error" {
		// crypto/tls reports an alert from the server this way (its alert type is unexported).
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLCert, Detail: "tls", Cause: errWithheld,
			Msg: "postgres: the server ended the TLS handshake: it may require a client certificate (set sslcert and sslkey), reject the one given, or not support this TLS version; check sslcert, sslkey and the server's ssl settings"}
	}
	if isTLSError(err) {
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldSSLMode, Detail: "tls", Cause: errWithheld,
			Msg: "postgres: the TLS connection failed: the server refused TLS, or its certificate did not verify against sslrootcert (or, with verify-full, does not name the host); check sslmode, sslrootcert and the server's certificate"}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return unavailable("timeout", "the server did not answer in time; the step is retried", errWithheld)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) {
		return unavailable("EOF", "the server closed the connection; the step is retried", errWithheld)
	}
	if phase == phaseConnect {
		return unavailable("", "connecting to the server failed; the step is retried", errWithheld)
	}
	return unavailable("", "reading the catalog failed; the step is retried", errWithheld)
}

func isTLSError(err error) bool {
	if errors.Is(err, errTLSVerify) {
		return true
	}
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		hnerr x509.HostnameError
		cierr x509.CertificateInvalidError
		rherr tls.RecordHeaderError
		alert tls.AlertError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &hnerr) || errors.As(err, &cierr) ||
		errors.As(err, &rherr) || errors.As(err, &alert) {
		return true
	}
	// pgconn reports a server that answers "N" to the SSLRequest with a bare errors.New; its
	// fixed text (which holds no field value) is the only way to recognize it.
	return strings.Contains(err.Error(), "server refused TLS connection")
}

// pgError maps a server error by SQLSTATE.
func pgError(pe *pgconn.PgError, phase string) error {
	e := &secrets.Error{Kind: secrets.SourceUnavailable, Detail: pe.Code,
		Cause: &pgconn.PgError{Severity: pe.Severity, Code: pe.Code}}
	class := pe.Code
	if len(class) > 2 {
		class = class[:2]
	}
	switch {
	case pe.Code == "28P01":
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "postgres: the server refused the login: wrong username or password, or the role may not log in; fix the credentials in the secret (not retried, so that the account is not locked)"
	case class == "28":
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "postgres: the server refused the connection for this role: pg_hba.conf has no entry that admits it from the agent with this sslmode, or it requires a client certificate; check pg_hba.conf, sslmode, sslcert and sslkey (not retried)"
	case pe.Code == "42501" && phase == phaseConnect:
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "postgres: the role may not connect to the database; GRANT CONNECT ON DATABASE to it (not retried)"
	case pe.Code == "42501":
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "postgres: the role may not read part of the catalog; run the preflight (TestConnectionWorkflow) to see the missing privileges, and grant them"
	case pe.Code == "3D000":
		e.Kind, e.Field = secrets.InvalidInput, FieldDatabase
		e.Msg = "postgres: the server has no database of the configured name; check field \"database\""
	case pe.Code == "53300":
		e.Msg = "postgres: the server has too many connections; the step is retried"
	case pe.Code == "57P03", pe.Code == "57P01", pe.Code == "57P02":
		e.Msg = "postgres: the server is starting up or shutting down; the step is retried"
	case pe.Code == "57014":
		e.Msg = "postgres: the server cancelled a catalog query (statement_timeout or an administrator); the step is retried"
	case pe.Code == "55P03":
		e.Msg = "postgres: a catalog query waited too long for a lock (lock_timeout); the step is retried"
	case class == "08", class == "53", class == "57", class == "58", class == "40", class == "XX":
		e.Msg = "postgres: the server failed or dropped the connection; the step is retried"
	case class == "42", class == "0A":
		e.Kind = secrets.InvalidInput
		e.Msg = "postgres: the server rejected a catalog query; this server version or flavour may not be supported"
	case phase == phaseConnect:
		e.Msg = "postgres: the server refused the connection; the step is retried"
	default:
		e.Msg = "postgres: a catalog query failed on the server; the step is retried"
	}
	return e
}

// contextError is the error for a ctx that ended: SourceUnavailable, wrapping ctxErr.
func contextError(ctxErr error) error { return connectors.ContextError("postgres", ctxErr) }

// errWithheld stands in for a driver error whose text may name connection fields.
var errWithheld = errors.New("postgres: driver error (text withheld: it may name connection fields)")

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	case syscall.EHOSTUNREACH:
		return "EHOSTUNREACH"
	case syscall.ENETUNREACH:
		return "ENETUNREACH"
	case syscall.ETIMEDOUT:
		return "ETIMEDOUT"
	case syscall.ECONNRESET:
		return "ECONNRESET"
	case syscall.ECONNABORTED:
		return "ECONNABORTED"
	case syscall.EPIPE:
		return "EPIPE"
	case syscall.EADDRNOTAVAIL:
		return "EADDRNOTAVAIL"
	}
	return "errno " + strconv.Itoa(int(e))
}
