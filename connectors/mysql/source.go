// Package mysql is the connector for MySQL 8 and MariaDB 10.6 or later, through
// github.com/go-sql-driver/mysql.
//
// In MySQL a schema is a database: Schemas lists the server's databases, and the filters'
// IncludeDatabases/ExcludeDatabases apply to the same names as IncludeSchemas/ExcludeSchemas (a
// database passes only if it passes both). The engine's own schemas (mysql, sys,
// performance_schema, information_schema) are skipped unless IncludeSystemSchemas is set.
//
// The connection is built from a mysql.Config, never from a DSN string. Every connection field
// may have come from a secret, so no field value (host, port, user, database, password, PEMs)
// ever appears in an error, a log line or a report, nor in an entity unless the field was a
// literal (OpenOptions.Literals: the database's name, a routine definer that is the login
// user; see Extract): errors are
// *secrets.Error values with messages of this package's own, a short code as Detail (a MySQL
// error number, "ECONNREFUSED", "tls") and a cause whose text names nothing (the server's and
// the network's error texts name the user, the host and the database, so they are replaced).
// The driver's own logger is switched off for the same reason.
//
// Catalog reads are set-based: Extract runs one information_schema query per entity kind for
// all the schemas it is given (TABLE_SCHEMA IN (?, ...), names bound as parameters, never
// patterns), and streams the rows to the writer as they arrive. No query joins two
// information_schema tables (the server materializes each without indexes, so a join is a
// nested loop over both): what a kind needs from another table (primary keys for columns,
// definitions and partitions for tables, rules for foreign keys, parameters for routines) is
// read by a smaller query of its own, first or after, and joined in Go. MariaDB keeps a
// sequence's parameters in the sequence itself: they are read by one UNION ALL query per
// MaxSequencesPerQuery sequences (sequences.go).
//
// Every connection pins the session variables that shape what the catalog returns
// (sessionVariables), so the output does not depend on the login user's session defaults.
//
// # TLS and authentication
//
// Field "tls" defaults to required: TLS, never a silent fall-back to plain text. preferred
// (TLS if the server offers it, plain text otherwise) and disable must be chosen. Only
// verify-ca and verify-full, and preferred or required with a CA in field "tlsca", verify the
// server's certificate; required without a CA encrypts but would talk as readily to an
// impersonator on the network path.
//
// Some ways a MySQL server may ask a client to log in reveal the password to whoever answers:
// sha256_password and caching_sha2_password's "full authentication" (when the server's cache
// holds no entry for the user) take the password in clear on a TLS connection, and on a plain
// one encrypted to an RSA key that the server itself sends; mysql_clear_password takes it in
// clear. The driver follows whatever the server asks. Others are challenge-response and never
// send the password: mysql_native_password, client_ed25519, and caching_sha2_password when the
// cache knows the user.
//
// So the driver gets no TLS configuration, and every connection goes through a guard (guard.go)
// between the driver and the network. The guard does the TLS upgrade itself, in the protocol
// (it sends the SSLRequest, runs the TLS handshake, and renumbers the packets around it), so it
// reads every packet of the login in clear on any channel. It lets the server ask for the
// password in a form the server can read only on verified TLS, or when the agent's policy sets
// legacyPasswordAuth for the destination (OpenOptions.LegacyPasswordAuth); otherwise such a
// request fails the connection with PolicyDenied (Detail "auth_plugin") before the driver has
// written anything in answer. When it lets the request through on TLS, the guard tells the
// driver that the connection is TLS, so that it answers as servers expect there (the password
// in clear inside the TLS, rather than a request for an RSA key that servers do not answer on
// TLS); on plain text (legacyPasswordAuth only) the driver encrypts it to the server's key.
// mysql_clear_password is refused on every channel (AllowCleartextPasswords is off) for password
// logins, as are the pre-4.1 scheme and plugins the driver does not know; with a token method
// (authMethod aws-iam, gcp-iam, azure-entra), whose token is meant to travel so, it is answered,
// and only on verified TLS (parseSettings refuses the method otherwise, and the guard still
// judges the channel).
//
// What the guard does not cover: once the server ends the login (OK or ERR), the guard passes
// bytes through unread (the driver sends no password after the login). It judges the channel,
// not the server: on verified TLS the password goes to whichever server holds a certificate
// that verifies, and verify-ca without field "tlsca" accepts any certificate from the system's
// roots, for any host. On plain text and unverified TLS a challenge-response still lets an
// impersonator relay the login to the real server, or try to guess a weak password from the
// answer offline; only verified TLS prevents that.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"github.com/secure-agent/secure-agent/connectors/iamauth"
	"maps"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Connection fields (see connectors.Lookup("mysql")).
const (
	FieldHost     = "host"
	FieldPort     = "port"
	FieldDatabase = "database"
	FieldUsername = "username"
	FieldPassword = "password"
	FieldTLS      = "tls"
	FieldTLSCA    = "tlsca"
	FieldTLSCert  = "tlscert"
	FieldTLSKey   = "tlskey"
)

// DefaultPort is the port used when field "port" is absent.
const DefaultPort = 3306

// DialTimeout bounds the TCP connect; ConnectTimeout bounds Open's whole first connection
// (connect, TLS and authentication), so a server that accepts connections but never answers
// cannot hold Open for longer.
const (
	DialTimeout    = 10 * time.Second
	ConnectTimeout = 30 * time.Second
)

// systemSchemas are the engine's own schemas, skipped unless Filters.IncludeSystemSchemas.
var systemSchemas = map[string]bool{
	"mysql":              true,
	"sys":                true,
	"performance_schema": true,
	"information_schema": true,
}

// IsSystemSchema reports whether name is one of the engine's own schemas.
func IsSystemSchema(name string) bool { return systemSchemas[name] }

// Source is an open connection to one MySQL or MariaDB server.
type Source struct {
	db *sql.DB

	caps   caps // read on first use
	capsOK bool

	// dbName is the Database of every entity and the Name of the Database entity: the value
	// of field "database" when it was a literal (OpenOptions.Literal), else "" (it may be a
	// secret).
	dbName string
	// login is the value of field "username", only ever compared with the routines' definers
	// (see owner); loginLiteral says it may be written.
	login        string
	loginLiteral bool

	chunkSize     int // schemas per catalog query; 0 for MaxSchemasPerQuery (tests set it)
	sequenceBatch int // sequences per query; 0 for MaxSequencesPerQuery (tests set it)
}

var _ connectors.Source = (*Source)(nil)

// caps records which optional information_schema columns and features the server has.
type caps struct {
	mariaDB          bool // MariaDB rather than MySQL
	schemaComment    bool // SCHEMATA.SCHEMA_COMMENT (MariaDB 10.5+)
	statExpression   bool // STATISTICS.EXPRESSION (MySQL 8.0.13+ functional key parts)
	externalLanguage bool // ROUTINES.EXTERNAL_LANGUAGE (MySQL 8.0.32+)
	checks           bool // CHECK_CONSTRAINTS (MariaDB 10.2+, MySQL 8.0.16+)
	checkTable       bool // CHECK_CONSTRAINTS.TABLE_NAME (MariaDB)
	checkEnforced    bool // TABLE_CONSTRAINTS.ENFORCED (MySQL 8.0.16+)
	version          string
}

// settings are the parsed connection fields.
type settings struct {
	// authMethod is AuthPassword or an iamauth method; awsRegion the RDS token's region.
	authMethod, awsRegion, awsRoleARN, awsExternalID string
	host                                             string
	port                                             int
	database                                         string
	user                                             string
	password                                         string
	mode                                             tlsMode
	tls                                              *tlsSettings
}

// Open connects to the server that creds describe, authenticates and returns the Source.
//
// Errors (all *secrets.Error, none naming a field value): a missing or malformed field
// (port not a number, unknown tls mode, a PEM that does not parse) is InvalidInput; refused
// credentials are SourceAuthFailed (final, so that retries never lock the account); an unknown
// database is InvalidInput; a server that asks for the password in a form it can read
// (sha256_password, mysql_clear_password, caching_sha2_password full authentication, an RSA
// public key) on a connection that is not verified TLS, without opts.LegacyPasswordAuth, is
// PolicyDenied with Detail "auth_plugin" (final; nothing of the password was sent); a TLS
// failure (the mode requires TLS and the server offers none, a certificate that does not verify,
// a refused handshake) is InvalidInput with Detail "tls"; an unreachable server, a timeout, too
// many connections and a server shutting down are SourceUnavailable (retried); the end of ctx
// is SourceUnavailable wrapping ctx.Err().
//
// opts.DialContext dials every connection; opts.LegacyPasswordAuth lets the server ask for the
// password in those forms on any channel (see the package doc).
func Open(ctx context.Context, creds connectors.Credentials, opts connectors.OpenOptions) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	st, err := parseSettings(creds)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(st.host, strconv.Itoa(st.port))
	cfg.User = st.user
	cfg.Passwd = st.password
	cfg.DBName = st.database
	cfg.Timeout = DialTimeout
	// The driver logs connection errors, whose texts name the host: its logger prints nothing.
	cfg.Logger = driverLog{}
	// Never answer mysql_clear_password, whatever the channel and the policy, except with a
	// token method, whose token is meant to be sent so (RDS's AWSAuthenticationPlugin, Cloud SQL
	// and Azure's Entra logins): then the TLS is verified (parseSettings) and the guard still
	// lets the request through only on verified TLS.
	cfg.AllowCleartextPasswords = st.authMethod != AuthPassword
	cfg.AllowOldPasswords = false
	cfg.MultiStatements = false
	cfg.InterpolateParams = false // names travel as bound parameters of prepared statements
	// Every connection pins what shapes the catalog's answers (see sessionVariables).
	cfg.Params = maps.Clone(sessionVariables)
	if err := cfg.Apply(mysql.Charset(sessionCharset, sessionCollation)); err != nil {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Cause: errRedacted,
			Msg: "mysql: the driver refused the connection settings"}
	}
	// The driver gets no TLS configuration: the guard below it does the TLS upgrade, so that it
	// sees the authentication exchange in clear and can refuse a request that would reveal the
	// password (guard.go).
	policy := guardPolicy{legacy: opts.LegacyPasswordAuth}
	if st.mode != tlsDisable {
		tc, err := st.tls.config(st.mode, st.host)
		if err != nil {
			return nil, err
		}
		policy.tls = tc
		policy.optional = st.mode == tlsPreferred
		policy.verified = st.tls.verifies(st.mode)
	}
	// Every connection goes through the options' Dialer, which judges exactly what is dialled,
	// and then through the guard.
	cfg.DialFunc = policy.dialer(opts.DialContext)
	before := beforeConnect
	if st.authMethod != AuthPassword {
		// A token for each new connection (an RDS token lives 15 minutes; the pool may reconnect).
		before = func(ctx context.Context, c *mysql.Config) error {
			token, err := iamauth.Token(ctx, iamauth.Request{Method: st.authMethod, Endpoint: c.Addr, Region: st.awsRegion, User: st.user,
				RoleARN: st.awsRoleARN, ExternalID: st.awsExternalID})
			if err != nil {
				if ctx.Err() != nil {
					return contextError(ctx.Err())
				}
				return &secrets.Error{Kind: secrets.AuthFailed, Field: FieldAuthMethod, Cause: errRedacted,
					Msg: "mysql: the agent could not get a login token for authMethod " + st.authMethod + ": it needs " + iamauth.IdentityHint(st.authMethod) + "; fix the agent's identity"}
			}
			c.Passwd = token
			return beforeConnect(ctx, c)
		}
	}
	if err := cfg.Apply(mysql.BeforeConnect(before)); err != nil {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Cause: errRedacted,
			Msg: "mysql: the driver refused the connection settings"}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Cause: errRedacted,
			Msg: "mysql: the driver refused the connection settings; check fields \"host\" and \"port\""}
	}
	s := &Source{login: st.user, loginLiteral: opts.Literal(FieldUsername)}
	if opts.Literal(FieldDatabase) {
		s.dbName = st.database
	}
	db := sql.OpenDB(guardedConnector{connector})
	// One connection: a Source is used by one goroutine at a time, and this bounds what the agent
	// holds on the customer's server (max_user_connections, max_connections).
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	pctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		cerr := classify(ctx, err, true)
		_ = s.Close()
		var se *secrets.Error
		if st.authMethod != AuthPassword && errors.As(cerr, &se) && se.Kind == secrets.SourceAuthFailed {
			return nil, &secrets.Error{Kind: secrets.SourceAuthFailed, Field: FieldAuthMethod, Detail: se.Detail,
				Msg: "mysql: the server refused the " + st.authMethod + " token for this user: the user must be created for IAM logins (RDS: IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'; Cloud SQL: an IAM user; Azure: an Entra principal), and the agent's identity allowed to log in as it"}
		}
		return nil, cerr
	}
	return s, nil
}

// sessionCharset and sessionCollation are every connection's (SET NAMES, after the login):
// names and texts arrive as UTF-8 whatever the user's or the server's defaults.
const (
	sessionCharset   = "utf8mb4"
	sessionCollation = "utf8mb4_general_ci"
)

// sessionVariables are set on every connection after the login, and so after the server's
// init_connect (the only way MariaDB and MySQL give one user other session defaults), so that
// the same catalog gives the same entities whatever the login user's session defaults:
//
//   - sql_mode, empty: ANSI_QUOTES makes the server quote identifiers with '"' in the texts it
//     deparses (CHECK clauses, generated columns, defaults), and other modes (ORACLE,
//     PIPES_AS_CONCAT, ...) change more of them;
//   - sql_quote_show_create 1: off, MariaDB leaves plain identifiers in those texts unquoted;
//   - time_zone '+00:00': TIMESTAMP columns' defaults are shown in the session's time zone;
//   - max_sort_length 1024: ORDER BY compares only that many bytes of a name (a session may
//     lower it to 64; a name is at most 256 bytes);
//   - sql_select_limit: a lower session default would cut every catalog query short, silently.
//
// Not pinned: MySQL 8's information_schema_stats_expiry (MariaDB has no such variable, and a
// connection cannot tell the engines apart before this runs), which decides how fresh MySQL's
// row counts and sizes are.
var sessionVariables = map[string]string{
	"sql_mode":              "''",
	"sql_quote_show_create": "1",
	"time_zone":             "'+00:00'",
	"max_sort_length":       "1024",
	"sql_select_limit":      "18446744073709551615",
}

// parseSettings checks every field and reports the first problem. Messages name fields, never
// their values.
func parseSettings(creds connectors.Credentials) (*settings, error) {
	get := func(name string) string {
		v, ok := creds[name]
		if !ok {
			return ""
		}
		return v.Reveal()
	}
	st := &settings{}
	st.host = strings.TrimSpace(get(FieldHost))
	if st.host == "" {
		return nil, invalidField(FieldHost, "mysql: the connection needs the server's host name or IP address; set field \"host\"")
	}
	if strings.HasPrefix(st.host, "[") && strings.HasSuffix(st.host, "]") {
		st.host = st.host[1 : len(st.host)-1] // a bracketed IPv6 literal
	}
	if strings.ContainsFunc(st.host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == '@' }) {
		return nil, invalidField(FieldHost, "mysql: field \"host\" must be a host name or an IP address, without spaces, slashes or a user part")
	}
	if strings.Contains(st.host, ":") && net.ParseIP(st.host) == nil {
		return nil, invalidField(FieldHost, "mysql: field \"host\" must not carry a port; put the port in field \"port\"")
	}
	st.port = DefaultPort
	if p := strings.TrimSpace(get(FieldPort)); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, invalidField(FieldPort, "mysql: field \"port\" must be a TCP port number from 1 to 65535")
		}
		st.port = n
	}
	st.user = get(FieldUsername)
	if st.user == "" {
		return nil, invalidField(FieldUsername, "mysql: the connection needs a user name; set field \"username\"")
	}
	if strings.ContainsRune(st.user, 0) {
		return nil, invalidField(FieldUsername, "mysql: field \"username\" contains a NUL byte")
	}
	st.password = get(FieldPassword)
	st.authMethod, st.awsRegion = strings.TrimSpace(get(FieldAuthMethod)), strings.TrimSpace(get(FieldAWSRegion))
	st.awsRoleARN, st.awsExternalID = strings.TrimSpace(get(FieldAWSRoleARN)), get(FieldAWSExternalID)
	if st.authMethod == "" {
		st.authMethod = AuthPassword
	}
	if field, problem := iamauth.Check(iamauth.Fields{Method: st.authMethod, Password: st.password,
		Region: st.awsRegion, RoleARN: st.awsRoleARN, ExternalID: st.awsExternalID}); problem != "" {
		return nil, invalidField(field, "mysql: field \""+field+"\" "+problem)
	}
	st.database = get(FieldDatabase)
	if strings.ContainsRune(st.database, 0) {
		return nil, invalidField(FieldDatabase, "mysql: field \"database\" contains a NUL byte")
	}
	mode, err := parseMode(get(FieldTLS))
	if err != nil {
		return nil, err
	}
	st.mode = mode
	tlsSt, err := parseTLS(mode, get(FieldTLSCA), get(FieldTLSCert), get(FieldTLSKey))
	if err != nil {
		return nil, err
	}
	st.tls = tlsSt
	if st.authMethod != AuthPassword && (st.mode == tlsDisable || !st.tls.verifies(st.mode)) {
		return nil, invalidField(FieldTLS, "mysql: field \"tls\" must be verify-full (or verify-ca) with authMethod "+st.authMethod+": the token is sent in clear inside TLS (mysql_clear_password), so only to a server whose certificate is verified")
	}
	return st, nil
}

// Authentication methods (field authMethod): AuthPassword, or a token of the agent's own
// identity (package iamauth), sent with mysql_clear_password inside verified TLS.
const (
	AuthPassword       = iamauth.Password
	FieldAuthMethod    = "authMethod"
	FieldAWSRegion     = "awsRegion"
	FieldAWSRoleARN    = "awsRoleArn"
	FieldAWSExternalID = "awsExternalId"
)

func invalidField(field, msg string) error {
	return &secrets.Error{Kind: secrets.InvalidInput, Field: field, Msg: msg}
}

// Preflight reads the server version, checks that the catalog is readable with the queries
// Extract runs, and lists the privileges a complete extraction needs that the user lacks:
//
//   - "SELECT on `db`.*" for each visible database (system ones aside) where the user may not
//     read every table: without it, tables and columns the user has no privilege on are
//     invisible in information_schema. It is probed by selecting from a table that does not
//     exist: MySQL checks privileges first, so "denied" (1142) means missing and "no such
//     table" (1146) means granted, through roles and wildcard grants too.
//   - "SHOW VIEW on `db`.*" for each database with a visible view whose definition the
//     server withholds.
//   - "SELECT on mysql.proc" (MariaDB) or "SHOW_ROUTINE" (MySQL 8) when the user may not see
//     every stored routine.
//
// Not probed: the TRIGGER privilege, without which the server lists no trigger of a table
// (probing it takes a statement that could create or drop one; the grants visible in
// information_schema miss those held through roles).
//
// At most MaxPrivilegeProbes databases are probed. The report's Identity is "mariadb 10.11.6"
// or "mysql 8.0.36": it never names the host, user or database.
func (s *Source) Preflight(ctx context.Context) (*connectors.PreflightReport, error) {
	c, err := s.capabilities(ctx)
	if err != nil {
		return nil, err
	}
	var visible int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA").Scan(&visible); err != nil {
		return nil, classify(ctx, err, false)
	}
	// Every catalog query Extract can run, for a schema that cannot exist: proves the user can
	// run them on this server version without reading anything.
	if err := s.probeQueries(ctx, c); err != nil {
		return nil, err
	}
	missing, err := s.missingPrivileges(ctx, c)
	if err != nil {
		return nil, err
	}
	flavor := "mysql"
	if c.mariaDB {
		flavor = "mariadb"
	}
	return &connectors.PreflightReport{
		ServerVersion:     c.version,
		Identity:          flavor + " " + shortVersion(c.version),
		MissingPrivileges: missing,
	}, nil
}

// MaxPrivilegeProbes bounds the per-database privilege probes of Preflight.
const MaxPrivilegeProbes = 1000

// probeTable is a table name no one uses; selecting from it tells "denied" from "granted".
const probeTable = "secure_agent_privilege_probe_9c41e7"

func (s *Source) missingPrivileges(ctx context.Context, c caps) ([]string, error) {
	var missing []string
	names, err := s.schemaNames(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	probed := 0
	for _, name := range names {
		if IsSystemSchema(name) || strings.ContainsRune(name, 0) {
			continue
		}
		if probed >= MaxPrivilegeProbes {
			break
		}
		probed++
		// An identifier cannot be a bound parameter: the name is the catalog's own, quoted.
		q := "SELECT 1 FROM " + quoteIdent(name) + "." + quoteIdent(probeTable) + " WHERE 1 = 0"
		rows, err := s.db.QueryContext(ctx, q)
		if err == nil {
			_ = rows.Close()
			continue
		}
		switch mysqlNumber(err) {
		case 1146: // no such table: SELECT is granted
		case 1142, 1044, 1143: // denied
			missing = append(missing, "SELECT on "+quoteIdent(name)+".*")
		default:
			return nil, classify(ctx, err, false)
		}
	}
	// Views whose definition is withheld: SHOW VIEW is missing.
	rows, err := s.db.QueryContext(ctx,
		"SELECT DISTINCT TABLE_SCHEMA FROM information_schema.VIEWS WHERE VIEW_DEFINITION = '' OR VIEW_DEFINITION IS NULL")
	if err != nil {
		return nil, classify(ctx, err, false)
	}
	var noDefinition []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			_ = rows.Close()
			return nil, classify(ctx, err, false)
		}
		if !IsSystemSchema(name) {
			noDefinition = append(noDefinition, name)
		}
	}
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return nil, classify(ctx, err, false)
	}
	_ = rows.Close()
	sort.Strings(noDefinition)
	for _, name := range noDefinition {
		missing = append(missing, "SHOW VIEW on "+quoteIdent(name)+".*")
	}
	routines, err := s.routinesVisible(ctx, c)
	if err != nil {
		return nil, err
	}
	if !routines {
		if c.mariaDB {
			missing = append(missing, "SELECT on mysql.proc")
		} else {
			missing = append(missing, "SHOW_ROUTINE")
		}
	}
	return missing, nil
}

// routinesVisible reports whether the user sees every stored routine: on MariaDB through SELECT
// on mysql.proc (probed), on MySQL 8 through the SHOW_ROUTINE privilege or a global SELECT (read
// from USER_PRIVILEGES, which lists the user's own grants; privileges held only through a role
// are not seen there).
func (s *Source) routinesVisible(ctx context.Context, c caps) (bool, error) {
	if c.mariaDB {
		rows, err := s.db.QueryContext(ctx, "SELECT 1 FROM mysql.proc WHERE 1 = 0")
		if err == nil {
			_ = rows.Close()
			return true, nil
		}
		switch mysqlNumber(err) {
		case 1142, 1044, 1143:
			return false, nil
		case 1146: // no mysql.proc at all: nothing to check
			return true, nil
		}
		return false, classify(ctx, err, false)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
		WHERE PRIVILEGE_TYPE IN ('SELECT', 'SHOW_ROUTINE')
		AND GRANTEE = CONCAT('''', LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER()) - CHAR_LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1),
			'''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')`).Scan(&n)
	if err != nil {
		return false, classify(ctx, err, false)
	}
	return n > 0, nil
}

// capabilities reads the server's version and which optional catalog columns it has, once (a
// failure is not kept: the next call tries again).
func (s *Source) capabilities(ctx context.Context) (caps, error) {
	if s.capsOK {
		return s.caps, nil
	}
	c, err := s.readCapabilities(ctx)
	if err != nil {
		return caps{}, err
	}
	s.caps, s.capsOK = c, true
	return c, nil
}

func (s *Source) readCapabilities(ctx context.Context) (caps, error) {
	var c caps
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&c.version); err != nil {
		return caps{}, classify(ctx, err, false)
	}
	c.mariaDB = strings.Contains(strings.ToLower(c.version), "mariadb")
	rows, err := s.db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = 'information_schema'
		AND TABLE_NAME IN ('SCHEMATA', 'STATISTICS', 'ROUTINES', 'CHECK_CONSTRAINTS', 'TABLE_CONSTRAINTS')
		AND COLUMN_NAME IN ('SCHEMA_COMMENT', 'EXPRESSION', 'EXTERNAL_LANGUAGE', 'CHECK_CLAUSE', 'TABLE_NAME', 'ENFORCED')`)
	if err != nil {
		return caps{}, classify(ctx, err, false)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			return caps{}, classify(ctx, err, false)
		}
		switch strings.ToUpper(table) + "." + strings.ToUpper(column) {
		case "SCHEMATA.SCHEMA_COMMENT":
			c.schemaComment = true
		case "STATISTICS.EXPRESSION":
			c.statExpression = true
		case "ROUTINES.EXTERNAL_LANGUAGE":
			c.externalLanguage = true
		case "CHECK_CONSTRAINTS.CHECK_CLAUSE":
			c.checks = true
		case "CHECK_CONSTRAINTS.TABLE_NAME":
			c.checkTable = true
		case "TABLE_CONSTRAINTS.ENFORCED":
			c.checkEnforced = true
		}
	}
	if err := rows.Err(); err != nil {
		return caps{}, classify(ctx, err, false)
	}
	return c, nil
}

// shortVersion is the leading dotted number of a version string: "10.11.6" of
// "10.11.6-MariaDB-0+deb12u1".
func shortVersion(v string) string {
	end := 0
	for end < len(v) && (v[end] == '.' || v[end] >= '0' && v[end] <= '9') {
		end++
	}
	if end == 0 {
		return v
	}
	return strings.TrimRight(v[:end], ".")
}

// Schemas lists the databases that pass filters, sorted (byte order). A database passes if it
// passes both the database filters and the schema filters; the engine's own are skipped unless
// filters.IncludeSystemSchemas.
func (s *Source) Schemas(ctx context.Context, filters connectors.Filters) ([]string, error) {
	all, err := s.schemaNames(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range all {
		if schemaPasses(name, filters) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func schemaPasses(name string, filters connectors.Filters) bool {
	if IsSystemSchema(name) && !filters.IncludeSystemSchemas {
		return false
	}
	return filters.DatabaseIncluded(name) && filters.SchemaIncluded(name)
}

func (s *Source) schemaNames(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, classify(ctx, err, false)
	}
	defer func() { _ = rows.Close() }()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, classify(ctx, err, false)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, false)
	}
	return names, nil
}

// Close releases the connection. It is safe to call more than once.
func (s *Source) Close() error {
	if s == nil {
		return nil
	}
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return classify(context.Background(), err, false)
	}
	return nil
}

// driverLog is the driver's logger: it prints nothing (the driver logs network errors, whose
// texts name the host).
type driverLog struct{}

// Print implements mysql.Logger.
func (driverLog) Print(...any) {}

// isTLSAlert reports whether err is an alert crypto/tls received or sent.
func isTLSAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && (oe.Op == "remote error" || oe.Op == "local error")
}

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// discard is an EntityWriter that drops everything (Preflight's dry run of the queries).
type discard struct{}

func (discard) Write(connectors.Entity) error { return nil }

// errRedacted replaces a cause whose text could name a field value.
var errRedacted = errors.New("mysql: driver error (text withheld: it can name the host, user or database)")

// contextError is the error for a ctx that ended: SourceUnavailable, wrapping ctxErr.
func contextError(ctxErr error) error { return connectors.ContextError("mysql", ctxErr) }
