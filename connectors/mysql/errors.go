package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/secrets"
)

// classify turns a driver, network or TLS error into a *secrets.Error. Its message is this
// package's own; Detail is a short code; Cause keeps what errors.Is and errors.As need (the
// MySQL error number, the errno, the context error) but never a text that could name the host,
// the user or the database. connecting says whether the error came from opening the first
// connection, where an access error means the credentials or the database field.
//
// Mapping (MySQL error numbers):
//
//	1045, 1698, 1130, 1820, 1862, 3118, 3955, 4151   SourceAuthFailed (final)
//	1049                                             InvalidInput, field "database"
//	1044 while connecting                            InvalidInput, field "database"
//	1044, 1142, 1143, 1227, 1370 on a catalog query  InvalidInput (a privilege is missing; Preflight names it)
//	1040, 1203, 1226, 1129, 1053, 1077-1080, 1152,
//	1159-1161, 1205, 1213, 1317, 1927, 1969, 3024    SourceUnavailable (retried)
//	1054, 1064, 1146                                 InvalidInput (this server's catalog lacks what the connector reads)
//	anything else                                    SourceUnavailable
//
// Without a MySQL error number: connection refused, unreachable, timeouts, a dropped
// connection and a host name that does not resolve temporarily are SourceUnavailable; a host
// name that does not exist is InvalidInput; a TLS failure (the server has no TLS while the
// mode requires it, a certificate that does not verify, a handshake refused) is InvalidInput
// with Detail "tls"; an authentication plugin the connector will not use is InvalidInput. A
// *secrets.Error is returned as it is: the guard's PolicyDenied (Detail "auth_plugin") for a
// server request that would reveal the password comes through here unchanged.
func classify(ctx context.Context, err error, connecting bool) error {
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
	if errors.Is(err, context.Canceled) {
		return contextError(context.Canceled)
	}

	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return classifyServer(me, connecting)
	}

	unavailable := func(detail, msg string, cause error) error {
		return &secrets.Error{Kind: secrets.SourceUnavailable, Detail: detail, Msg: msg, Cause: cause}
	}
	var (
		verr     errTLSVerify
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		certVer  *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		dnsErr   *net.DNSError
		errno    syscall.Errno
	)
	switch {
	case errors.Is(err, mysql.ErrNoTLS):
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls", Cause: mysql.ErrNoTLS,
			Msg: "mysql: the server does not offer TLS, but field \"tls\" requires it; enable TLS on the server, or set field \"tls\" to preferred or disable"}
	case errors.As(err, &hostname):
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls", Cause: errTLSHostname,
			Msg: "mysql: the server's TLS certificate is not valid for the configured host (verify-full); connect by a name the certificate lists, or use verify-ca"}
	case errors.As(err, &verr), errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &certVer):
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls", Cause: errTLSCertificate,
			Msg: "mysql: the server's TLS certificate did not verify against the CA in field \"tlsca\" (or the system's roots when it is empty); check the CA, or the mode in field \"tls\""}
	case errors.As(err, &alert), errors.As(err, &record):
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls", Cause: errTLSHandshake,
			Msg: "mysql: the TLS handshake with the server failed (for example it refused the client certificate, or spoke no TLS); check fields \"tls\", \"tlscert\" and \"tlskey\""}
	case errors.Is(err, mysql.ErrCleartextPassword), errors.Is(err, mysql.ErrOldPassword),
		errors.Is(err, mysql.ErrNativePassword), errors.Is(err, mysql.ErrUnknownPlugin):
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldUsername, Detail: "auth plugin", Cause: errRedacted,
			Msg: "mysql: the user's authentication plugin is not one the connector uses (it never sends the password in clear text or uses the pre-4.1 scheme); give the user mysql_native_password or caching_sha2_password"}
	case errors.Is(err, mysql.ErrOldProtocol):
		return &secrets.Error{Kind: secrets.InvalidInput, Detail: "protocol", Cause: mysql.ErrOldProtocol,
			Msg: "mysql: the server speaks a protocol older than 4.1; it is not supported"}
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldHost, Detail: "ENOTFOUND", Cause: errRedacted,
				Msg: "mysql: the server's host name does not resolve; check field \"host\""}
		}
		return unavailable("DNS", "mysql: the server's host name could not be resolved just now; the step is retried", errRedacted)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return unavailable("timeout", "mysql: the server did not complete the connection in time; check that it is reachable from the agent (the step is retried)", context.DeadlineExceeded)
	case errors.As(err, &errno):
		name := errnoName(errno)
		switch errno {
		case syscall.ECONNREFUSED:
			return unavailable(name, "mysql: the server refused the connection; check fields \"host\" and \"port\" and that the server is running (the step is retried)", errno)
		case syscall.ETIMEDOUT:
			return unavailable(name, "mysql: connecting to the server timed out; check that it is reachable from the agent (the step is retried)", errno)
		case syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EADDRNOTAVAIL:
			return unavailable(name, "mysql: the server's network is unreachable from the agent; check field \"host\" and the network (the step is retried)", errno)
		case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED:
			return unavailable(name, "mysql: the server closed the connection; the step is retried", errno)
		}
		return unavailable(name, "mysql: a network error occurred talking to the server; the step is retried", errno)
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, mysql.ErrMalformPkt), errors.Is(err, mysql.ErrPktSync),
		errors.Is(err, mysql.ErrPktSyncMul), errors.Is(err, net.ErrClosed):
		return unavailable("connection lost", "mysql: the connection to the server was lost; the step is retried", errConnLost)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return unavailable("timeout", "mysql: the server did not answer in time; the step is retried", context.DeadlineExceeded)
	}
	var oe *net.OpError
	if isTLSAlert(err) {
		// crypto/tls reports alerts as these operations.
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldTLS, Detail: "tls", Cause: errTLSHandshake,
			Msg: "mysql: the TLS handshake with the server failed (for example it refused the client certificate); check fields \"tls\", \"tlscert\" and \"tlskey\""}
	}
	if errors.As(err, &oe) {
		return unavailable("network", "mysql: a network error occurred talking to the server; the step is retried", errRedacted)
	}
	return unavailable("", "mysql: talking to the server failed; the step is retried", errRedacted)
}

// classifyServer maps an error the server sent. The server's message names the user, the host
// and the database, so the cause keeps only the number and SQLSTATE.
func classifyServer(me *mysql.MySQLError, connecting bool) error {
	cause := &mysql.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: "(message withheld: it can name the user, host or database)"}
	detail := "MySQL " + strconv.Itoa(int(me.Number))
	e := &secrets.Error{Kind: secrets.SourceUnavailable, Detail: detail, Cause: cause}
	switch me.Number {
	case 1045: // ER_ACCESS_DENIED_ERROR
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the server refused the user name and password; check fields \"username\" and \"password\", and that the user may connect from the agent's address"
	case 1698: // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the server refused the user (it authenticates by another means than a password); give the user a password"
	case 1130: // ER_HOST_NOT_PRIVILEGED
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the server does not let this user connect from the agent's address; create the user for that host"
	case 1820, 1862: // ER_MUST_CHANGE_PASSWORD, ER_MUST_CHANGE_PASSWORD_LOGIN
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the user's password has expired; set a new one and update the secret"
	case 3118, 4151: // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL, MariaDB)
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the user's account is locked; unlock it (ALTER USER ... ACCOUNT UNLOCK)"
	case 3955: // ER_USER_ACCESS_DENIED_FOR_USER_ACCOUNT_BLOCKED_BY_PASSWORD_LOCK
		e.Kind = secrets.SourceAuthFailed
		e.Msg = "mysql: the user's account is locked after too many failed logins; check fields \"username\" and \"password\" and unlock it"
	case 1049: // ER_BAD_DB_ERROR
		e.Kind, e.Field = secrets.InvalidInput, FieldDatabase
		e.Msg = "mysql: the database in field \"database\" does not exist; fix it or leave the field empty"
	case 1044, 1142, 1143, 1227, 1370:
		// ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR,
		// ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_PROCACCESS_DENIED_ERROR
		e.Kind = secrets.InvalidInput
		if connecting && me.Number == 1044 {
			e.Field = FieldDatabase
			e.Msg = "mysql: the user may not use the database in field \"database\"; grant access to it, or leave the field empty"
		} else {
			e.Msg = "mysql: the user lacks a privilege the catalog query needs; run the connection test (Preflight) to list the missing privileges"
		}
	case 1040, 1203, 1226:
		// ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS, ER_USER_LIMIT_REACHED
		e.Msg = "mysql: the server has too many connections (or the user reached a connection or query limit); the step is retried"
	case 1129: // ER_HOST_IS_BLOCKED
		e.Msg = "mysql: the server blocks connections from the agent's address after many connection errors; an administrator can run FLUSH HOSTS (the step is retried)"
	case 1053, 1077, 1078, 1079, 1080: // server shutdown in progress
		e.Msg = "mysql: the server is shutting down; the step is retried"
	case 1152, 1159, 1160, 1161, 1927: // aborted connection, net read/write errors, connection killed
		e.Msg = "mysql: the server dropped the connection; the step is retried"
	case 1205, 1213: // lock wait timeout, deadlock
		e.Msg = "mysql: a catalog query waited too long for a lock; the step is retried"
	case 1317, 1969, 3024: // query interrupted, max_statement_time (MariaDB), max_execution_time (MySQL)
		e.Msg = "mysql: the server interrupted a catalog query (a statement time limit or a KILL); the step is retried"
	case 1054, 1064, 1146: // unknown column, syntax error, no such table
		e.Kind = secrets.InvalidInput
		e.Msg = "mysql: the server's catalog lacks a table or column the connector reads; this server version may be unsupported"
	default:
		e.Msg = "mysql: the server reported an error; the step is retried"
	}
	return e
}

// mysqlNumber is the MySQL error number of err, or 0.
func mysqlNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

var (
	errTLSCertificate = errors.New("mysql: the server's TLS certificate did not verify")
	errTLSHostname    = errors.New("mysql: the server's TLS certificate is for another host")
	errTLSHandshake   = errors.New("mysql: the TLS handshake failed")
	errConnLost       = errors.New("mysql: the connection to the server was lost")
)

// errnoName is the symbolic name of the errnos the messages distinguish.
func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	case syscall.ETIMEDOUT:
		return "ETIMEDOUT"
	case syscall.EHOSTUNREACH:
		return "EHOSTUNREACH"
	case syscall.ENETUNREACH:
		return "ENETUNREACH"
	case syscall.EADDRNOTAVAIL:
		return "EADDRNOTAVAIL"
	case syscall.ECONNRESET:
		return "ECONNRESET"
	case syscall.EPIPE:
		return "EPIPE"
	case syscall.ECONNABORTED:
		return "ECONNABORTED"
	}
	return "errno " + strconv.Itoa(int(e))
}
