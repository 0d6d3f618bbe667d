package postgres

import (
	"slices"

	"github.com/secure-agent/secure-agent/connectors"
)

// fieldNames are the values of the connection fields that could name things in entities (host,
// database, username), with what the options say about where they came from. They decide which
// names an entity may carry (see the "Names and owners" comment of package connectors).
type fieldNames struct {
	// all holds every such value: an owner equal to one is withheld, since any of them may
	// have come from a secret.
	all []string
	// secret holds those that came from a secret (not in OpenOptions.Literals): never written,
	// not even as the login role's or the database's name.
	secret []string
	// login is the value of field "username", the login role's name.
	login string
	// database is the database's name when field "database" was a literal, "" otherwise.
	database string
}

// newFieldNames records the naming fields' values and which of them opts lists as literals.
func newFieldNames(host, database, user string, opts connectors.OpenOptions) fieldNames {
	n := fieldNames{all: []string{host, database, user}, login: user}
	for field, v := range map[string]string{FieldHost: host, FieldDatabase: database, FieldUsername: user} {
		if !opts.Literal(field) {
			n.secret = append(n.secret, v)
		}
	}
	if opts.Literal(FieldDatabase) && !slices.Contains(n.secret, database) {
		n.database = database
	}
	return n
}

// owner applies the owner rule to the name of an object's owner: the login role's name is written
// only when field "username" was a literal (and no secret field has the same value); isLogin
// reports the login role either way. Any other owner equal to the value of a naming field is
// withheld ("", false).
func (n fieldNames) owner(name string) (owner string, isLogin bool) {
	if name == n.login {
		if slices.Contains(n.secret, name) {
			return "", true
		}
		return name, true
	}
	if slices.Contains(n.all, name) {
		return "", false
	}
	return name, false
}

// withDatabase returns e with its Database field set to database (every kind has one but
// Database, whose Name is set where it is built).
func withDatabase(e connectors.Entity, database string) connectors.Entity {
	switch v := e.(type) {
	case connectors.Schema:
		v.Database = database
		return v
	case connectors.Table:
		v.Database = database
		return v
	case connectors.Column:
		v.Database = database
		return v
	case connectors.Key:
		v.Database = database
		return v
	case connectors.Constraint:
		v.Database = database
		return v
	case connectors.Index:
		v.Database = database
		return v
	case connectors.Sequence:
		v.Database = database
		return v
	case connectors.Trigger:
		v.Database = database
		return v
	case connectors.Type:
		v.Database = database
		return v
	case connectors.Routine:
		v.Database = database
		return v
	case connectors.Lineage:
		v.Database = database
		return v
	}
	return e
}
