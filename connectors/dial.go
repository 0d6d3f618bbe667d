package connectors

import (
	"context"
	"net"
	"slices"

	"github.com/secure-agent/secure-agent/netguard"
)

// OpenOptions are the agent-side settings a source is opened with. Workflow input never sets
// them: the activities build them from agent policy.
type OpenOptions struct {
	// Dialer opens every network connection of the source and judges its destination; nil
	// dials as a zero Dialer does (canonical forms only, no policy).
	Dialer *netguard.Dialer
	// LegacyPasswordAuth lets the server ask for the password in a form it can read (PostgreSQL:
	// clear text or MD5; MySQL: clear text or encrypted to a key it sends) on a connection that
	// is not verified TLS. Only a policy rule that names the destination sets it.
	LegacyPasswordAuth bool
	// SQLiteDirs are the directories SQLite database files may be opened in: absolute, clean,
	// with symbolic links resolved. Empty: no SQLite file may be opened.
	SQLiteDirs []string
	// Literals names the connection fields whose values came from no secret (literals in the
	// input, and defaults): their values may be written to the output (the database's name, an
	// owner equal to the login role). A field not listed may be a secret and is never written.
	Literals []string
}

// Literal reports whether field's value came from no secret (see Literals).
func (o OpenOptions) Literal(field string) bool { return slices.Contains(o.Literals, field) }

// DialContext dials through the options' Dialer, or a zero Dialer.
func (o OpenOptions) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &netguard.Dialer{}
	}
	return d.DialContext(ctx, network, address)
}
