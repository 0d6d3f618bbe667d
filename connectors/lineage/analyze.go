package lineage

import (
	"cmp"
	"slices"
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/secure-agent/secure-agent/connectors"
)

// tableStatement is a parsed query: a SELECT or a set operation.
type tableStatement = sqlparser.TableStatement

// maxQueryDepth bounds the nesting of queries the analyzer follows (subqueries, derived tables,
// CTEs, set-operation arms), as a last guard behind MaxNesting and MaxTokens.
const maxQueryDepth = 4096

// maxRecursiveRounds bounds the rounds a recursive CTE's lineage takes to reach its fixed point.
// Each round adds sources or turns a column into an expression, so a CTE of n columns reading m
// relation columns settles within n*(m+1)+1 rounds; real ones settle in two or three.
const maxRecursiveRounds = 64

// column is one output column of a query or relation, and its lineage so far.
type column struct {
	name string
	// named reports that the definition names the column (a column list, an alias, a column
	// reference, a star); an unnamed expression's name is the parser's rendering of it.
	named bool
	// sources are the relation columns the value comes from. Shared between columns: never
	// modified after the column is made.
	sources map[connectors.ColumnRef]struct{}
	// direct reports that the value is a relation column's, renamed at most.
	direct bool
}

// sortedSources returns c's sources sorted by schema, table and column (never nil).
func (c column) sortedSources() []connectors.ColumnRef {
	out := make([]connectors.ColumnRef, 0, len(c.sources))
	for s := range c.sources {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b connectors.ColumnRef) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column))
	})
	return out
}

// sameLineage reports whether a and b have the same sources and transformations.
func sameLineage(a, b []column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].direct != b[i].direct || len(a[i].sources) != len(b[i].sources) {
			return false
		}
		for s := range a[i].sources {
			if _, ok := b[i].sources[s]; !ok {
				return false
			}
		}
	}
	return true
}

// unionSources returns a new set holding every source of cols.
func unionSources(cols ...column) map[connectors.ColumnRef]struct{} {
	out := make(map[connectors.ColumnRef]struct{})
	for _, c := range cols {
		for s := range c.sources {
			out[s] = struct{}{}
		}
	}
	return out
}

// renameColumns returns cols named by names, which what (for a Problem) says where they come from.
func renameColumns(cols []column, names []string, what string) ([]column, error) {
	if len(names) != len(cols) {
		return nil, problemf("%s names %d columns, the query gives %d", what, len(names), len(cols))
	}
	out := make([]column, len(cols))
	for i, c := range cols {
		c.name, c.named = names[i], true
		out[i] = c
	}
	return out, nil
}

// rel is a relation a FROM clause reads: a table or view of the catalog (base), a CTE or a
// derived table.
type rel struct {
	// schema and name are a base relation's names as the catalog stores them, or a CTE's name.
	schema, name string
	base         bool
	// alias is the name the FROM clause gives it, if any.
	alias string
	cols  []column
}

// refName is the name the query refers to r by.
func (r *rel) refName() string {
	if r.alias != "" {
		return r.alias
	}
	return r.name
}

// fromSet is what a FROM clause (or a part of it) makes visible: its relations, for qualified
// references and t.*, and its columns in SELECT * order, for unqualified references, with the
// columns a USING or NATURAL join merges appearing once.
type fromSet struct {
	rels    []*rel
	visible []column
	// on are the join conditions, checked once the whole FROM clause is in scope.
	on []sqlparser.Expr
}

// scope is what names in one SELECT resolve against: its FROM clause, then the enclosing
// queries' (correlated references).
type scope struct {
	from   *fromSet
	parent *scope
	ctes   *cteScope
	// aliases are the select list's names, which ORDER BY, GROUP BY, HAVING (and, in SQLite,
	// WHERE) may refer to.
	aliases []string
	windows map[string]*sqlparser.WindowSpecification
}

// cteScope is a chain of the CTEs in scope, innermost first.
type cteScope struct {
	name   string
	cols   []column
	parent *cteScope
}

// analyzer resolves one definition's lineage.
type analyzer struct {
	dialect      Dialect
	schema, view string
	cat          Catalog
	upstream     map[connectors.RelationRef]struct{}
	depth        int
}

func newAnalyzer(dialect Dialect, schema, view string, cat Catalog) *analyzer {
	return &analyzer{dialect: dialect, schema: schema, view: view, cat: cat,
		upstream: make(map[connectors.RelationRef]struct{})}
}

// upstreamRefs returns the relations read, sorted by schema and name (never nil).
func (a *analyzer) upstreamRefs() []connectors.RelationRef {
	out := make([]connectors.RelationRef, 0, len(a.upstream))
	for r := range a.upstream {
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y connectors.RelationRef) int {
		return cmp.Or(cmp.Compare(x.Schema, y.Schema), cmp.Compare(x.Name, y.Name))
	})
	return out
}

// columnNames returns the names of the view's columns: the catalog's, when it knows the view,
// after checking that the definition gives as many columns (and, in SQLite, the same names where
// the definition names them); else the definition's.
func (a *analyzer) columnNames(out []column) ([]string, error) {
	names := make([]string, len(out))
	for i, c := range out {
		names[i] = c.name
	}
	v, ok := a.cat.Lookup(a.schema, a.view)
	if !ok {
		return names, nil
	}
	if len(v.Columns) != len(out) {
		return nil, problemf("the definition gives %d columns, the catalog lists %d for the view", len(out), len(v.Columns))
	}
	if a.dialect == SQLite {
		for i, c := range out {
			if c.named && !sqliteViewColumnMatches(c.name, v.Columns[i]) {
				return nil, problemf("column %d is %s in the definition but %s in the catalog", i+1, quoteName(c.name), quoteName(v.Columns[i]))
			}
		}
	}
	return slices.Clone(v.Columns), nil
}

// query returns the output columns of stmt, whose names resolve in outer (nil for the view's
// query) and whose relation names see ctes.
func (a *analyzer) query(stmt tableStatement, outer *scope, ctes *cteScope) ([]column, error) {
	a.depth++
	defer func() { a.depth-- }()
	if a.depth > maxQueryDepth {
		return nil, problemf("the definition nests queries too deeply")
	}
	switch s := stmt.(type) {
	case *sqlparser.Select:
		return a.selectQuery(s, outer, ctes)
	case *sqlparser.Union:
		return a.setOperation(s, outer, ctes)
	case nil:
		return nil, problemf("the definition has no query")
	}
	return nil, problemf("the definition's query is not a SELECT (VALUES and TABLE are not supported)")
}

// setOperation returns the columns of a UNION (or INTERSECT or EXCEPT, read as UNION): each fed by
// the same column of every arm, direct only if direct in every arm, named by the first arm.
func (a *analyzer) setOperation(u *sqlparser.Union, outer *scope, ctes *cteScope) ([]column, error) {
	ctes, err := a.with(u.With, outer, ctes)
	if err != nil {
		return nil, err
	}
	left, err := a.query(u.Left, outer, ctes)
	if err != nil {
		return nil, err
	}
	right, err := a.query(u.Right, outer, ctes)
	if err != nil {
		return nil, err
	}
	if len(left) != len(right) {
		return nil, problemf("the arms of a set operation give %d and %d columns", len(left), len(right))
	}
	out := make([]column, len(left))
	for i := range left {
		out[i] = column{name: left[i].name, named: left[i].named, sources: unionSources(left[i], right[i]),
			direct: left[i].direct && right[i].direct}
	}
	sc := &scope{parent: outer, ctes: ctes, aliases: columnNamesOf(out)}
	if err := a.checkClauses(sc, u.OrderBy, u.Limit); err != nil {
		return nil, err
	}
	return out, nil
}

func columnNamesOf(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

// with returns ctes extended by w's CTEs, in order (each sees the ones before it).
func (a *analyzer) with(w *sqlparser.With, outer *scope, ctes *cteScope) (*cteScope, error) {
	if w == nil {
		return ctes, nil
	}
	for _, cte := range w.CTEs {
		name := cte.ID.String()
		var cols []column
		var err error
		if w.Recursive {
			cols, err = a.recursiveCTE(cte, outer, ctes)
		} else {
			cols, err = a.query(cte.Subquery, outer, ctes)
			if err == nil && len(cte.Columns) > 0 {
				cols, err = renameColumns(cols, identifiers(cte.Columns), "the column list of CTE "+quoteName(name))
			}
		}
		if err != nil {
			return nil, err
		}
		ctes = &cteScope{name: name, cols: cols, parent: ctes}
	}
	return ctes, nil
}

// recursiveCTE returns the columns of a CTE of a WITH RECURSIVE: named by its column list or its
// first (anchor) arm, with the lineage it reaches when the CTE's own columns feed the arms that
// read it, round after round, until nothing changes.
func (a *analyzer) recursiveCTE(cte *sqlparser.CommonTableExpr, outer *scope, ctes *cteScope) ([]column, error) {
	name := cte.ID.String()
	names := identifiers(cte.Columns)
	if len(names) == 0 {
		anchor := cte.Subquery
		for {
			u, ok := anchor.(*sqlparser.Union)
			if !ok {
				break
			}
			anchor = u.Left
		}
		cols, err := a.query(anchor, outer, ctes)
		if err != nil {
			return nil, err
		}
		names = columnNamesOf(cols)
	}
	// The CTE starts with no sources and direct columns, which a set operation's arms leave
	// as they find them.
	binding := make([]column, len(names))
	for i, n := range names {
		binding[i] = column{name: n, named: true, sources: map[connectors.ColumnRef]struct{}{}, direct: true}
	}
	what := "the column list of CTE " + quoteName(name)
	for range maxRecursiveRounds {
		cols, err := a.query(cte.Subquery, outer, &cteScope{name: name, cols: binding, parent: ctes})
		if err != nil {
			return nil, err
		}
		if cols, err = renameColumns(cols, names, what); err != nil {
			return nil, err
		}
		if sameLineage(cols, binding) {
			return cols, nil
		}
		binding = cols
	}
	return nil, problemf("the lineage of recursive CTE %s does not settle", quoteName(name))
}

// identifiers returns the names of a column list.
func identifiers(cols sqlparser.Columns) []string {
	if len(cols) == 0 {
		return nil
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.String()
	}
	return out
}

// selectQuery returns the output columns of one SELECT.
func (a *analyzer) selectQuery(s *sqlparser.Select, outer *scope, ctes *cteScope) ([]column, error) {
	ctes, err := a.with(s.With, outer, ctes)
	if err != nil {
		return nil, err
	}
	from, err := a.fromClause(s.From, outer, ctes)
	if err != nil {
		return nil, err
	}
	sc := &scope{from: from, parent: outer, ctes: ctes}
	if sc.windows, err = a.namedWindows(s.Windows); err != nil {
		return nil, err
	}
	var out []column
	if s.SelectExprs != nil {
		for _, e := range s.SelectExprs.Exprs {
			cols, err := a.selectExpr(e, sc)
			if err != nil {
				return nil, err
			}
			out = append(out, cols...)
		}
	}
	if len(out) == 0 {
		return nil, problemf("a SELECT of the definition has no columns")
	}
	sc.aliases = columnNamesOf(out)
	clauses := []sqlparser.SQLNode{s.Where, s.GroupBy, s.Having, s.OrderBy, s.Limit}
	for _, on := range from.on {
		clauses = append(clauses, on)
	}
	if err := a.checkClauses(sc, clauses...); err != nil {
		return nil, err
	}
	return out, nil
}

// namedWindows indexes a SELECT's WINDOW clause by lower-cased name.
func (a *analyzer) namedWindows(nw sqlparser.NamedWindows) (map[string]*sqlparser.WindowSpecification, error) {
	if len(nw) == 0 {
		return nil, nil
	}
	out := make(map[string]*sqlparser.WindowSpecification)
	for _, w := range nw {
		if w == nil {
			continue
		}
		for _, d := range w.Windows {
			if d == nil || d.WindowSpec == nil {
				continue
			}
			key := strings.ToLower(d.Name.String())
			if _, dup := out[key]; dup {
				return nil, problemf("window %s is defined twice", quoteName(d.Name.String()))
			}
			out[key] = d.WindowSpec
		}
	}
	return out, nil
}

// selectExpr returns the output columns one select-list item gives.
func (a *analyzer) selectExpr(e sqlparser.SelectExpr, sc *scope) ([]column, error) {
	switch x := e.(type) {
	case *sqlparser.StarExpr:
		return a.star(x, sc)
	case *sqlparser.AliasedExpr:
		c, err := a.expr(x.Expr, sc)
		if err != nil {
			return nil, err
		}
		switch {
		case !x.As.IsEmpty():
			c.name, c.named = x.As.String(), true
		default:
			if ref, ok := x.Expr.(*sqlparser.ColName); ok {
				c.name, c.named = ref.Name.String(), true
			} else {
				c.name, c.named = sqlparser.String(x.Expr), false
			}
		}
		return []column{c}, nil
	}
	return nil, problemf("the definition's select list has an item that is not supported")
}

// star expands * (every visible column of the FROM clause) or q.* (every column of q).
func (a *analyzer) star(x *sqlparser.StarExpr, sc *scope) ([]column, error) {
	if x.TableName.IsEmpty() {
		if len(sc.from.visible) == 0 {
			return nil, problemf("the definition selects * without a FROM clause")
		}
		return slices.Clone(sc.from.visible), nil
	}
	r, err := a.relationIn(sc.from, x.TableName)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, problemf("the definition selects %s.* but reads no relation %s", quoteName(x.TableName.Name.String()), quoteName(qualified(x.TableName.Qualifier.String(), x.TableName.Name.String())))
	}
	return slices.Clone(r.cols), nil
}

// expr returns the lineage of a select-list expression: a column reference keeps the referenced
// column's; anything else is an expression of every column it names (scalar subqueries
// contributing their select lists' sources, windows their specifications').
func (a *analyzer) expr(e sqlparser.Expr, sc *scope) (column, error) {
	if ref, ok := e.(*sqlparser.ColName); ok {
		return a.resolve(ref, sc, false)
	}
	sources := make(map[connectors.ColumnRef]struct{})
	if err := a.collectSources(e, sc, sources, nil); err != nil {
		return column{}, err
	}
	return column{sources: sources, direct: false}, nil
}

// collectSources adds to sources the columns node reads into its value. seenWindows guards
// against windows defined in terms of each other.
func (a *analyzer) collectSources(node sqlparser.SQLNode, sc *scope, sources map[connectors.ColumnRef]struct{}, seenWindows []string) error {
	return sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.ColName:
			c, err := a.resolve(x, sc, false)
			if err != nil {
				return false, err
			}
			for s := range c.sources {
				sources[s] = struct{}{}
			}
		case *sqlparser.Subquery:
			cols, err := a.query(x.Select, sc, sc.ctes)
			if err != nil {
				return false, err
			}
			for s := range unionSources(cols...) {
				sources[s] = struct{}{}
			}
			return false, nil
		case *sqlparser.OverClause:
			if err := a.windowSources(x.WindowName, sc, sources, seenWindows); err != nil {
				return false, err
			}
		case *sqlparser.WindowSpecification:
			if err := a.windowSources(x.Name, sc, sources, seenWindows); err != nil {
				return false, err
			}
		}
		return true, nil
	}, node)
}

// windowSources adds the sources of the named window, if name is not empty.
func (a *analyzer) windowSources(name sqlparser.IdentifierCI, sc *scope, sources map[connectors.ColumnRef]struct{}, seen []string) error {
	if name.IsEmpty() {
		return nil
	}
	key := name.Lowered()
	spec := sc.windows[key]
	if spec == nil {
		return problemf("window %s is not defined", quoteName(name.String()))
	}
	if slices.Contains(seen, key) {
		return problemf("window %s is defined in terms of itself", quoteName(name.String()))
	}
	return a.collectSources(spec, sc, sources, append(seen, key))
}

// checkClauses resolves every column reference of the clauses (so that a name the catalog does
// not know is a Problem) and analyses their subqueries (whose relations are upstream). Names of
// the select list are accepted where the engine accepts them.
func (a *analyzer) checkClauses(sc *scope, clauses ...sqlparser.SQLNode) error {
	for _, clause := range clauses {
		err := sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			switch x := n.(type) {
			case *sqlparser.ColName:
				if _, err := a.resolve(x, sc, true); err != nil {
					return false, err
				}
			case *sqlparser.Subquery:
				if _, err := a.query(x.Select, sc, sc.ctes); err != nil {
					return false, err
				}
				return false, nil
			}
			return true, nil
		}, clause)
		if err != nil {
			return err
		}
	}
	return nil
}

// resolve returns the column ref names: a qualified name in the innermost scope that has its
// relation, an unqualified one in the innermost scope that has the column, or, when lenient, a
// name of the select list (then with no sources).
func (a *analyzer) resolve(ref *sqlparser.ColName, sc *scope, lenient bool) (column, error) {
	name := ref.Name.String()
	if ref.Qualifier.IsEmpty() {
		if lenient && slices.ContainsFunc(sc.aliases, func(s string) bool { return columnNamesEqual(a.dialect, s, name) }) {
			return column{}, nil
		}
		for s := sc; s != nil; s = s.parent {
			c, found, err := a.visibleColumn(s.from, name)
			if err != nil || found {
				return c, err
			}
		}
		return column{}, problemf("column %s is not in any relation the query reads", quoteName(name))
	}
	for s := sc; s != nil; s = s.parent {
		r, err := a.relationIn(s.from, ref.Qualifier)
		if err != nil {
			return column{}, err
		}
		if r != nil {
			return a.columnOf(r, name)
		}
	}
	return column{}, problemf("column %s names relation %s, which the query does not read", quoteName(name), quoteName(qualified(ref.Qualifier.Qualifier.String(), ref.Qualifier.Name.String())))
}

// visibleColumn finds an unqualified column among the visible columns of from.
func (a *analyzer) visibleColumn(from *fromSet, name string) (column, bool, error) {
	if from == nil {
		return column{}, false, nil
	}
	var found []column
	for _, c := range from.visible {
		if columnNamesEqual(a.dialect, c.name, name) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return column{}, false, nil
	case 1:
		return found[0], true, nil
	}
	return column{}, false, problemf("column %s is ambiguous", quoteName(name))
}

// columnOf returns r's column name.
func (a *analyzer) columnOf(r *rel, name string) (column, error) {
	var found []column
	for _, c := range r.cols {
		if columnNamesEqual(a.dialect, c.name, name) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return column{}, problemf("relation %s has no column %s", quoteName(r.refName()), quoteName(name))
	case 1:
		return found[0], nil
	}
	return column{}, problemf("column %s of relation %s is ambiguous", quoteName(name), quoteName(r.refName()))
}

// relationIn finds the relation a qualifier names in from: by alias, by name when it has no
// alias, and, for a schema-qualified name, a base relation without alias. It returns nil when
// from has none.
func (a *analyzer) relationIn(from *fromSet, tn sqlparser.TableName) (*rel, error) {
	if from == nil {
		return nil, nil
	}
	schema, name := tn.Qualifier.String(), tn.Name.String()
	var found []*rel
	for _, r := range from.rels {
		var match bool
		if schema == "" {
			match = relationNamesEqual(a.dialect, r.refName(), name)
		} else {
			match = r.base && r.alias == "" && relationNamesEqual(a.dialect, r.schema, schema) && relationNamesEqual(a.dialect, r.name, name)
		}
		if match {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return nil, problemf("relation name %s is ambiguous", quoteName(qualified(schema, name)))
}
