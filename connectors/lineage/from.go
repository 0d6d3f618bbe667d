package lineage

import (
	"slices"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/secure-agent/secure-agent/connectors"
)

// fromClause returns what a SELECT's FROM clause makes visible. Its derived tables see outer (the
// enclosing queries), not the clause's other relations.
func (a *analyzer) fromClause(exprs []sqlparser.TableExpr, outer *scope, ctes *cteScope) (*fromSet, error) {
	out := &fromSet{}
	for _, te := range exprs {
		part, err := a.tableExpr(te, outer, ctes)
		if err != nil {
			return nil, err
		}
		out = crossJoin(out, part)
	}
	return out, nil
}

// tableExpr returns what one FROM item makes visible.
func (a *analyzer) tableExpr(te sqlparser.TableExpr, outer *scope, ctes *cteScope) (*fromSet, error) {
	switch x := te.(type) {
	case *sqlparser.AliasedTableExpr:
		r, err := a.aliasedRelation(x, outer, ctes)
		if err != nil || r == nil {
			return &fromSet{}, err
		}
		return &fromSet{rels: []*rel{r}, visible: r.cols}, nil
	case *sqlparser.JoinTableExpr:
		return a.join(x, outer, ctes)
	case *sqlparser.ParenTableExpr:
		return a.fromClause(x.Exprs, outer, ctes)
	case *sqlparser.JSONTableExpr:
		return nil, problemf("JSON_TABLE is not supported")
	}
	return nil, problemf("the definition's FROM clause has an item that is not supported")
}

// aliasedRelation returns the relation of a table name or derived table, with its alias and
// column list applied; nil for DUAL, which the parser also puts in a FROM clause a SELECT
// lacks (the SQLite front-end refuses names spelled dual, which could be a table there).
func (a *analyzer) aliasedRelation(x *sqlparser.AliasedTableExpr, outer *scope, ctes *cteScope) (*rel, error) {
	var r *rel
	switch t := x.Expr.(type) {
	case sqlparser.TableName:
		if t.Qualifier.IsEmpty() && t.Name.String() == "dual" {
			return nil, nil
		}
		var err error
		if r, err = a.namedRelation(t, ctes); err != nil {
			return nil, err
		}
	case *sqlparser.DerivedTable:
		if t.Lateral {
			return nil, problemf("LATERAL derived tables are not supported")
		}
		cols, err := a.query(t.Select, outer, ctes)
		if err != nil {
			return nil, err
		}
		r = &rel{cols: cols}
	default:
		return nil, problemf("the definition's FROM clause has an item that is not supported")
	}
	r.alias = x.As.String()
	if len(x.Columns) > 0 {
		cols, err := renameColumns(r.cols, identifiers(x.Columns), "the column list of "+quoteName(r.refName()))
		if err != nil {
			return nil, err
		}
		r.cols = cols
	}
	return r, nil
}

// namedRelation returns the CTE or catalog relation a table name names: an unqualified name is
// the innermost CTE of that name, else a relation of the view's schema. Catalog relations are
// upstream.
func (a *analyzer) namedRelation(t sqlparser.TableName, ctes *cteScope) (*rel, error) {
	schema, name := t.Qualifier.String(), t.Name.String()
	if schema == "" {
		for c := ctes; c != nil; c = c.parent {
			if relationNamesEqual(a.dialect, c.name, name) {
				return &rel{name: c.name, cols: c.cols}, nil
			}
		}
		schema = a.schema
	}
	if relationNamesEqual(a.dialect, schema, a.schema) && relationNamesEqual(a.dialect, name, a.view) {
		return nil, problemf("the definition reads the view itself")
	}
	found, ok := a.cat.Lookup(schema, name)
	if !ok {
		return nil, problemf("relation %s is not in the catalog", quoteName(qualified(schema, name)))
	}
	if len(found.Columns) == 0 {
		return nil, problemf("the catalog lists no columns for relation %s", quoteName(qualified(found.Schema, found.Name)))
	}
	a.upstream[connectors.RelationRef{Schema: found.Schema, Name: found.Name}] = struct{}{}
	cols := make([]column, len(found.Columns))
	for i, c := range found.Columns {
		ref := connectors.ColumnRef{Schema: found.Schema, Table: found.Name, Column: c}
		cols[i] = column{name: c, named: true, sources: map[connectors.ColumnRef]struct{}{ref: {}}, direct: true}
	}
	return &rel{schema: found.Schema, name: found.Name, base: true, cols: cols}, nil
}

// crossJoin returns l and r side by side (a comma, a CROSS JOIN, or a join ON a condition).
func crossJoin(l, r *fromSet) *fromSet {
	return &fromSet{
		rels:    append(slices.Clone(l.rels), r.rels...),
		visible: append(slices.Clone(l.visible), r.visible...),
		on:      append(slices.Clone(l.on), r.on...),
	}
}

// join returns what a JOIN makes visible.
func (a *analyzer) join(j *sqlparser.JoinTableExpr, outer *scope, ctes *cteScope) (*fromSet, error) {
	l, err := a.tableExpr(j.LeftExpr, outer, ctes)
	if err != nil {
		return nil, err
	}
	r, err := a.tableExpr(j.RightExpr, outer, ctes)
	if err != nil {
		return nil, err
	}
	right := j.Join == sqlparser.RightJoinType || j.Join == sqlparser.NaturalRightJoinType
	switch j.Join {
	case sqlparser.NaturalJoinType, sqlparser.NaturalLeftJoinType, sqlparser.NaturalRightJoinType:
		return a.mergeJoin(l, r, a.commonColumns(l, r, right), right)
	case sqlparser.NormalJoinType, sqlparser.StraightJoinType, sqlparser.LeftJoinType, sqlparser.RightJoinType:
		if j.Condition != nil && len(j.Condition.Using) > 0 {
			return a.mergeJoin(l, r, identifiers(j.Condition.Using), right)
		}
		out := crossJoin(l, r)
		if j.Condition != nil && j.Condition.On != nil {
			out.on = append(out.on, j.Condition.On)
		}
		return out, nil
	}
	return nil, problemf("a join of the definition is of a kind that is not supported")
}

// commonColumns returns the names a NATURAL join merges: the visible names of both sides, in the
// order of the side whose columns come first (the left one, or MySQL's right one of a right join).
func (a *analyzer) commonColumns(l, r *fromSet, right bool) []string {
	first, second := l, r
	if right && a.dialect == MySQL {
		first, second = r, l
	}
	var out []string
	for _, c := range first.visible {
		if slices.ContainsFunc(second.visible, func(o column) bool { return columnNamesEqual(a.dialect, o.name, c.name) }) &&
			!slices.ContainsFunc(out, func(n string) bool { return columnNamesEqual(a.dialect, n, c.name) }) {
			out = append(out, c.name)
		}
	}
	return out
}

// mergeJoin returns what a USING or NATURAL join on names makes visible, each merged column
// once. A merged column is the left side's (inner and left joins); of a right join, MySQL's is
// the right side's, SQLite's coalesces both sides. The order is the engine's: MySQL puts the
// merged columns first, then the other columns of the first side (the right one of a right
// join), then the other side's; SQLite keeps the left side's columns in place, the merged ones
// among them, then adds the right side's others.
func (a *analyzer) mergeJoin(l, r *fromSet, names []string, right bool) (*fromSet, error) {
	out := &fromSet{rels: append(slices.Clone(l.rels), r.rels...), on: append(slices.Clone(l.on), r.on...)}
	left, rRest := slices.Clone(l.visible), slices.Clone(r.visible)
	mergedAt := make([]bool, len(left))
	var merged []column
	for i, n := range names {
		if slices.ContainsFunc(names[:i], func(o string) bool { return columnNamesEqual(a.dialect, o, n) }) {
			return nil, problemf("join column %s is named twice", quoteName(n))
		}
		li, err := a.onlyVisible(left, n)
		if err != nil {
			return nil, err
		}
		ri, err := a.onlyVisible(rRest, n)
		if err != nil {
			return nil, err
		}
		lc, rc := left[li], rRest[ri]
		m := lc
		switch {
		case right && a.dialect == MySQL:
			m = rc
		case right:
			m = column{name: lc.name, named: true, sources: unionSources(lc, rc), direct: false}
		}
		left[li], mergedAt[li] = m, true
		merged = append(merged, m)
		rRest = slices.Delete(rRest, ri, ri+1)
	}
	if a.dialect == SQLite {
		out.visible = append(left, rRest...)
		return out, nil
	}
	var lRest []column
	for i, c := range left {
		if !mergedAt[i] {
			lRest = append(lRest, c)
		}
	}
	if right {
		lRest, rRest = rRest, lRest
	}
	out.visible = append(append(merged, lRest...), rRest...)
	return out, nil
}

// onlyVisible returns the index of the one column of cols named name.
func (a *analyzer) onlyVisible(cols []column, name string) (int, error) {
	at := -1
	for i, c := range cols {
		if columnNamesEqual(a.dialect, c.name, name) {
			if at >= 0 {
				return 0, problemf("join column %s is ambiguous", quoteName(name))
			}
			at = i
		}
	}
	if at < 0 {
		return 0, problemf("join column %s is not on both sides of the join", quoteName(name))
	}
	return at, nil
}
