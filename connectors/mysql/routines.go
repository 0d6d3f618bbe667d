package mysql

import (
	"context"
	"database/sql"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

// routinesQuery lists functions and procedures, with their bodies. Its IN list is the schema
// names.
func (x *chunk) routinesQuery() string {
	lang := "NULL"
	if x.c.externalLanguage {
		lang = "EXTERNAL_LANGUAGE"
	}
	return `SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_BODY, ` + lang + `,
	ROUTINE_COMMENT, SPECIFIC_NAME, ROUTINE_DEFINITION, IS_DETERMINISTIC, SECURITY_TYPE, DEFINER
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA IN ` + x.in + ` AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')
ORDER BY ` + bin("ROUTINE_SCHEMA") + `, ` + bin("ROUTINE_NAME") + `, ROUTINE_TYPE`
}

// parametersQuery lists the routines' parameters in order (a function's return value, position
// 0, is left out). Its IN list is the schema names.
func (x *chunk) parametersQuery() string {
	return `SELECT SPECIFIC_SCHEMA, SPECIFIC_NAME, ROUTINE_TYPE, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER
FROM information_schema.PARAMETERS
WHERE SPECIFIC_SCHEMA IN ` + x.in + ` AND ORDINAL_POSITION > 0
ORDER BY ` + bin("SPECIFIC_SCHEMA") + `, ` + bin("SPECIFIC_NAME") + `, ROUTINE_TYPE, ORDINAL_POSITION`
}

// routineKey names a routine as PARAMETERS does: schema, specific name and type (as the catalog
// spells it).
type routineKey struct{ schema, specific, typ string }

// signatures reads the parameters of the chunk's routines, formatted and in order, by routine.
// They are read before the routines, so that the routines (whose bodies may be large) stream
// to the writer: what is held is a few short strings per routine.
func (x *chunk) signatures(ctx context.Context) (map[routineKey][]string, error) {
	var schema, specific, typ, mode, name, dataType sql.NullString
	dest := []any{&schema, &specific, &typ, &mode, &name, &dataType}
	out := map[routineKey][]string{}
	err := x.s.stream(ctx, x.parametersQuery(), x.args, dest, func() error {
		if !x.schemas[schema.String] || !dataType.Valid {
			return nil
		}
		p := paramName(name.String) + " " + dataType.String
		if m := strings.ToUpper(mode.String); m == "OUT" || m == "INOUT" {
			p = m + " " + p
		}
		k := routineKey{schema.String, specific.String, typ.String}
		out[k] = append(out[k], p)
		return nil
	})
	return out, err
}

// routines writes the chunk's functions and procedures: the parameters first (see signatures),
// then the routines as they stream.
//
// Definition is ROUTINE_DEFINITION (empty when the server withholds it: MariaDB shows it to
// the definer and to users with SELECT on mysql.proc, MySQL 8 to those with SHOW_ROUTINE).
// DETERMINISTIC routines are "immutable", others "volatile". Owner is the definer's user name,
// never its host, under the login-role rule (see owner).
func (x *chunk) routines(ctx context.Context) error {
	sigs, err := x.signatures(ctx)
	if err != nil {
		return err
	}
	var schema, name, typ, returns, body, lang, comment, specific, definition, deterministic, security,
		definer sql.NullString
	dest := []any{&schema, &name, &typ, &returns, &body, &lang, &comment, &specific, &definition, &deterministic,
		&security, &definer}
	var last routineKey // rows come in order: a duplicate follows its twin
	return x.s.stream(ctx, x.routinesQuery(), x.args, dest, func() error {
		k := routineKey{schema.String, specific.String, typ.String}
		if !x.schemas[k.schema] || k == last {
			return nil
		}
		last = k
		language := body.String
		if lang.Valid && lang.String != "" {
			language = lang.String
		}
		r := connectors.Routine{
			Database:        x.s.dbName,
			Schema:          schema.String,
			Name:            name.String,
			Type:            strings.ToLower(typ.String),
			Signature:       strings.Join(sigs[k], ", "),
			Language:        strings.ToLower(language),
			Definition:      definition.String,
			Volatility:      "volatile",
			SecurityDefiner: strings.EqualFold(security.String, "DEFINER"),
			Comment:         comment.String,
		}
		if r.Type == connectors.RoutineFunction {
			r.ReturnType = returns.String
		}
		if strings.EqualFold(deterministic.String, "YES") {
			r.Volatility = "immutable"
		}
		r.Owner, r.OwnerIsLoginRole = x.s.owner(definerUser(definer.String))
		return x.w.Write(r)
	})
}

// definerUser is the user part of a DEFINER ("user@host": the text before the last "@"; a
// role, without "@", is all of it). The host part is never written.
func definerUser(definer string) string {
	if i := strings.LastIndexByte(definer, '@'); i >= 0 {
		return definer[:i]
	}
	return definer
}

// owner applies the login-role rule to the name of an object's owner: the login user's own name
// is written only when field "username" was a literal, and OwnerIsLoginRole marks it either
// way; another name is written as it is; "" is no owner.
func (s *Source) owner(name string) (owner string, isLoginRole bool) {
	switch {
	case name == "":
		return "", false
	case name != s.login:
		return name, false
	case s.loginLiteral:
		return name, true
	}
	return "", true
}

// paramName quotes a parameter's name with backticks when it is not a plain identifier, so
// that a signature stays readable: "a int, `b c` varchar(10)".
func paramName(name string) string {
	plain := name != ""
	digits := true
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == '$':
			digits = false
		default:
			plain = false
		}
	}
	if plain && !digits {
		return name
	}
	return quoteIdent(name)
}
