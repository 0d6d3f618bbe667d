// Package lineage finds the column-level lineage of a view by parsing its definition, for the
// engines whose catalogs do not record it (MySQL/MariaDB and SQLite; PostgreSQL's comes from its
// catalog). Analyze takes the definition as the connector reads it and a Catalog of the relations
// it may read, and returns a connectors.Lineage with Method "parser".
//
// The parser is Vitess's MySQL parser (vitess.io/vitess/go/vt/sqlparser). MySQL and MariaDB
// definitions (information_schema.VIEWS.VIEW_DEFINITION) go to it as they are, with INTERSECT and
// EXCEPT read as UNION (which feeds the output columns in the same way). SQLite definitions (the
// CREATE VIEW text of sqlite_schema) are first tokenized by SQLite's own lexical rules in this
// package, and their SELECT handed to the parser in MySQL's spelling: identifiers quoted any way
// SQLite allows become backquoted, strings are re-escaped (SQLite gives a backslash no meaning),
// comments are dropped, and a few operators with the same lineage are renamed (== to =, GLOB and
// MATCH to LIKE, the type of a CAST to CHAR). What the parser then rejects is reported, never
// guessed.
//
// The definition is untrusted text: anyone who can create a view writes it. Analyze bounds its
// size and nesting, never panics, and puts no parser message into Problem (only a position).
package lineage

import (
	"fmt"
	"slices"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

// Method is the connectors.Lineage.Method of every lineage this package returns.
const Method = "parser"

// Limits on a definition. Past them Analyze reports a Problem instead of parsing.
const (
	// MaxDefinitionBytes bounds the definition's size.
	MaxDefinitionBytes = 1 << 20
	// MaxNesting bounds the depth of parentheses (subqueries, derived tables, nested calls).
	MaxNesting = 64
	// MaxTokens bounds the number of tokens, which bounds the depth of operator chains the
	// parser nests (a+a+a+... is as deep as it is long).
	MaxTokens = 100_000
)

// Dialect is the SQL dialect of a definition.
type Dialect int

const (
	// MySQL is MySQL's and MariaDB's dialect: the definition is the query alone, as
	// information_schema.VIEWS.VIEW_DEFINITION gives it. Table names, aliases and CTE names
	// compare exactly (lower_case_table_names=0), column names case-insensitively.
	MySQL Dialect = iota + 1
	// SQLite is SQLite's dialect: the definition is the CREATE VIEW statement as sqlite_schema
	// keeps it (a bare SELECT or WITH query is accepted too). Names compare case-insensitively
	// in ASCII, as SQLite compares them.
	SQLite
)

// String names the dialect.
func (d Dialect) String() string {
	switch d {
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// Relation is a table or view as the catalog knows it.
type Relation struct {
	// Schema and Name are the relation's names as the catalog stores them.
	Schema string
	Name   string
	// Columns are its column names, in order.
	Columns []string
}

// Catalog answers what the analysis needs to know about the relations a definition names.
type Catalog interface {
	// Lookup returns the table or view schema.name, matching the names as the engine does
	// (SQLite: case-insensitively; MySQL: exactly), with the names as stored and its columns in
	// order; ok is false when there is none. Analyze asks for the view itself too: when the
	// catalog knows it, its column names name the lineage's columns, and a definition that
	// gives another number of columns is a Problem.
	Lookup(schema, name string) (rel Relation, ok bool)
}

// StaticCatalog is a Catalog over a fixed list of relations, such as the ones a connector read
// with one columns query for a batch of schemas.
type StaticCatalog struct {
	dialect Dialect
	rels    map[[2]string]Relation
}

var _ Catalog = (*StaticCatalog)(nil)

// NewCatalog returns a Catalog of rels that matches names as dialect's engine does. Of relations
// whose names match, the first is kept.
func NewCatalog(dialect Dialect, rels []Relation) *StaticCatalog {
	c := &StaticCatalog{dialect: dialect, rels: make(map[[2]string]Relation, len(rels))}
	for _, r := range rels {
		k := c.key(r.Schema, r.Name)
		if _, dup := c.rels[k]; !dup {
			c.rels[k] = r
		}
	}
	return c
}

// Lookup implements Catalog.
func (c *StaticCatalog) Lookup(schema, name string) (Relation, bool) {
	r, ok := c.rels[c.key(schema, name)]
	return r, ok
}

// key is the names as the dialect compares them.
func (c *StaticCatalog) key(schema, name string) [2]string {
	if c.dialect == SQLite {
		return [2]string{asciiLowerString(schema), asciiLowerString(name)}
	}
	return [2]string{schema, name}
}

// Analyze returns the lineage of the view schema.view from its definition, in dialect, resolving
// the relations it reads with cat. Unqualified relation names resolve in schema (MySQL: the
// view's database; SQLite: "main", or "temp" for a temporary view).
//
// The result has Schema, View, Method "parser" and either Upstream and Columns or, when the
// definition cannot be analysed, a Problem (a short reason without any text of the definition
// but names) with Upstream and Columns empty. Database and Source are the caller's to fill.
//
// What the columns hold:
//   - Upstream: every table and view the query reads (also in subqueries, CTEs and derived
//     tables), sorted and deduplicated; CTEs are not relations, and the view itself never is.
//     A view read by the view is upstream, and its columns are sources: lineage is not followed
//     through it.
//   - Columns: the view's columns in order. A column's Sources are the relation columns its value
//     is computed from: the columns its select-list expression names, including window
//     specifications and the select lists of scalar subqueries in it; filter, join, grouping and
//     ordering columns are not sources. Through derived tables, CTEs (recursive ones to a fixed
//     point) and set operations (UNION, INTERSECT, EXCEPT: every arm feeds the column) the
//     sources are those of the columns read. Transformation is "direct" when the value is a
//     relation column's, renamed at most, in every arm; otherwise "expression", also for a
//     constant (which has no sources). The column a USING or NATURAL join merges is the left
//     side's (inner and left joins); for a right join it is the right side's (MySQL) or
//     both, as an expression (SQLite, which coalesces them).
//   - Column names: the catalog's names for the view when it knows the view; else the
//     definition's (a column list, an alias, a column's name, or, for an unnamed expression, the
//     parser's rendering of it).
func Analyze(dialect Dialect, schema, view, definition string, cat Catalog) (result connectors.Lineage) {
	result = connectors.Lineage{Schema: schema, View: view, Method: Method}
	defer func() {
		if r := recover(); r != nil {
			result = withProblem(result, "the definition could not be analysed (internal error)")
		}
	}()
	if cat == nil {
		return withProblem(result, "no catalog to resolve the definition's relations")
	}
	upstream, cols, err := analyze(dialect, schema, view, definition, cat)
	if err != nil {
		return withProblem(result, problemText(err))
	}
	result.Upstream = upstream
	result.Columns = cols
	return result
}

// analyze parses definition and resolves its lineage.
func analyze(dialect Dialect, schema, view, definition string, cat Catalog) ([]connectors.RelationRef, []connectors.ColumnLineage, error) {
	if len(definition) > MaxDefinitionBytes {
		return nil, nil, problemf("the definition is larger than %d bytes", MaxDefinitionBytes)
	}
	var q parsedView
	var err error
	switch dialect {
	case MySQL:
		q, err = parseMySQL(definition)
	case SQLite:
		q, err = parseSQLite(definition)
	default:
		return nil, nil, problemf("unknown dialect")
	}
	if err != nil {
		return nil, nil, err
	}
	a := newAnalyzer(dialect, schema, view, cat)
	out, err := a.query(q.stmt, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if q.columnNames != nil {
		if out, err = renameColumns(out, q.columnNames, "the view's column list"); err != nil {
			return nil, nil, err
		}
	}
	names, err := a.columnNames(out)
	if err != nil {
		return nil, nil, err
	}
	return a.upstreamRefs(), lineageColumns(out, names), nil
}

// parsedView is a definition after parsing: its query and, where the definition has one
// (SQLite's CREATE VIEW v(a, b)), the column list that renames the query's columns.
type parsedView struct {
	stmt        tableStatement
	columnNames []string
}

// lineageColumns turns the query's output columns into the entity's, named names.
func lineageColumns(cols []column, names []string) []connectors.ColumnLineage {
	out := make([]connectors.ColumnLineage, len(cols))
	for i, c := range cols {
		t := connectors.LineageExpression
		if c.direct {
			t = connectors.LineageDirect
		}
		out[i] = connectors.ColumnLineage{Column: names[i], Sources: c.sortedSources(), Transformation: t}
	}
	return out
}

// withProblem returns l with problem set and nothing guessed.
func withProblem(l connectors.Lineage, problem string) connectors.Lineage {
	l.Problem = problem
	l.Upstream = []connectors.RelationRef{}
	l.Columns = []connectors.ColumnLineage{}
	return l
}

// problem is a reason the definition cannot be analysed. Its text is Lineage.Problem: it may name
// identifiers of the definition, never quote other text of it.
type problem struct{ msg string }

func (p *problem) Error() string { return p.msg }

func problemf(format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...)}
}

// problemText is err's Lineage.Problem text.
func problemText(err error) string {
	if p, ok := err.(*problem); ok {
		return p.msg
	}
	return "the definition could not be analysed"
}

// maxNameInProblem bounds an identifier quoted in a Problem.
const maxNameInProblem = 64

// quoteName quotes an identifier of the definition for a Problem, shortened to
// maxNameInProblem bytes (on a rune boundary) and with control characters escaped.
func quoteName(s string) string {
	if len(s) > maxNameInProblem {
		cut := maxNameInProblem
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// qualified joins non-empty name parts with dots, for Problems.
func qualified(parts ...string) string {
	parts = slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return s == "" })
	return strings.Join(parts, ".")
}
