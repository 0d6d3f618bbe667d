package postgres

import (
	"cmp"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// View lineage from the engine's own catalog, without parsing SQL text.
//
// A view's (or materialized view's) query is stored as the action of its _RETURN rule:
// pg_rewrite.ev_action, the text form of the parsed Query node tree (PostgreSQL's outfuncs
// format). lineageQuery fetches it with the names of every relation the rule depends on
// (pg_depend) and of their columns; readNodeTree reads the text as data, and a lineageResolver
// follows each output column of the view through the range tables (subqueries, joins, CTEs,
// set operations, VALUES, functions) down to columns of relations. Nothing is guessed: where
// the tree holds a shape the resolver does not know, the view's Lineage has a Problem and no
// Upstream or Columns.

// Bounds on one view's stored tree. A tree over them gets a Problem, not an error.
const (
	// maxTreeBytes bounds the text of one tree (lineageQuery does not fetch larger ones): the
	// tree of a view of a thousand columns over a dozen joins is a few hundred kilobytes.
	maxTreeBytes = 4 << 20
	// maxTreeDepth bounds the nesting of braces and parentheses, and of the resolution's
	// recursion (each step of which descends one level of the tree or of the query levels).
	maxTreeDepth = 10000
	// maxResolveSteps bounds the work of resolving one view's columns.
	maxResolveSteps = 2_000_000
)

// lineageQuery lists views (v) and materialized views (m) with the text of their stored query
// tree (NULL, with its size, when it is over maxTreeBytes), their columns in order, and, for
// the relations their _RETURN rule depends on (pg_depend, whatever the kind: the tree says which
// it reads), the relation's schema and name and its live columns' numbers and names. Names come
// from the catalog, not from the tree, which keeps the names objects had when the view was
// created. $1 is the batch's schemas; rows come in schema order (as given), then view name.
//
// $1 is the only parameter (the steps of Extract take one), so the size bound is written into
// the text; TestLineageQueryBound checks that it is maxTreeBytes.
const lineageQuery = `SELECT n.nspname::text, c.relname::text, c.oid,
	CASE WHEN pg_catalog.octet_length(r.ev_action::text) <= 4194304 THEN r.ev_action::text END,
	COALESCE(pg_catalog.octet_length(r.ev_action::text), 0)::int8,
	ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
	COALESCE(rels.oids, '{}'), COALESCE(rels.schemas, '{}'), COALESCE(rels.names, '{}'),
	COALESCE(cols.rels, '{}'), COALESCE(cols.nums, '{}'), COALESCE(cols.names, '{}')
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_rewrite AS r ON r.ev_class = c.oid AND r.rulename = '_RETURN'
LEFT JOIN LATERAL (
	SELECT pg_catalog.array_agg(u.oid ORDER BY u.oid) AS oids,
		pg_catalog.array_agg(un.nspname::text ORDER BY u.oid) AS schemas,
		pg_catalog.array_agg(u.relname::text ORDER BY u.oid) AS names
	FROM pg_catalog.pg_class AS u
	JOIN pg_catalog.pg_namespace AS un ON un.oid = u.relnamespace
	WHERE u.oid <> c.oid AND u.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend AS d
		WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
			AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass)
) AS rels ON true
LEFT JOIN LATERAL (
	SELECT pg_catalog.array_agg(a.attrelid ORDER BY a.attrelid, a.attnum) AS rels,
		pg_catalog.array_agg(a.attnum::int8 ORDER BY a.attrelid, a.attnum) AS nums,
		pg_catalog.array_agg(a.attname::text ORDER BY a.attrelid, a.attnum) AS names
	FROM pg_catalog.pg_attribute AS a
	WHERE a.attrelid = ANY (rels.oids) AND a.attnum > 0 AND NOT a.attisdropped
) AS cols ON true
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND c.relkind IN ('v', 'm')
ORDER BY pg_catalog.array_position($1::text[], n.nspname::text), c.relname`

// lineageRow reads one row of lineageQuery into a Lineage (Method "catalog"). A tree it cannot
// analyse gives a Lineage with Problem set; only a row that does not scan is an error.
func lineageRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		v                    viewTree
		tree                 *string
		relOIDs, colRels     []uint32
		relSchemas, relNames []string
		colNums              []int64
		colNames             []string
	)
	if err := rows.Scan(&v.schema, &v.name, &v.oid, &tree, &v.treeBytes, &v.columns,
		&relOIDs, &relSchemas, &relNames, &colRels, &colNums, &colNames); err != nil {
		return nil, err
	}
	if tree != nil {
		v.tree, v.hasTree = *tree, true
	}
	v.catalog = newLineageCatalog(relOIDs, relSchemas, relNames, colRels, colNums, colNames)
	return v.lineage(), nil
}

// viewTree is what lineageQuery gives for one view.
type viewTree struct {
	schema, name string
	oid          uint32
	// tree is the stored query tree's text; hasTree is false when the view has no _RETURN
	// rule or the tree is over maxTreeBytes (treeBytes says which).
	tree      string
	hasTree   bool
	treeBytes int64
	// columns are the view's column names, by attnum.
	columns []string
	catalog lineageCatalog
}

// lineage analyses the view. Problems (an unreadable or unknown tree) are reported in the
// result, never guessed around.
func (v viewTree) lineage() connectors.Lineage {
	l := connectors.Lineage{Schema: v.schema, View: v.name, Method: "catalog",
		Upstream: []connectors.RelationRef{}, Columns: []connectors.ColumnLineage{}}
	up, cols, err := v.analyse()
	if err != nil {
		l.Problem = problemText(err)
		return l
	}
	l.Upstream, l.Columns = up, cols
	return l
}

func (v viewTree) analyse() ([]connectors.RelationRef, []connectors.ColumnLineage, error) {
	switch {
	case v.treeBytes > maxTreeBytes:
		return nil, nil, errTooLarge
	case !v.hasTree:
		return nil, nil, problem("the view has no stored query (_RETURN rule)")
	}
	root, err := readNodeTree(v.tree)
	if err != nil {
		return nil, nil, err
	}
	query, err := viewQuery(root)
	if err != nil {
		return nil, nil, err
	}
	up, err := v.upstream(root)
	if err != nil {
		return nil, nil, err
	}
	res := newLineageResolver(v.catalog)
	flows, err := res.viewColumns(query, len(v.columns))
	if err != nil {
		return nil, nil, err
	}
	cols := make([]connectors.ColumnLineage, len(flows))
	for i, f := range flows {
		cols[i] = connectors.ColumnLineage{Column: v.columns[i], Sources: v.catalog.columnRefs(f.sources),
			Transformation: connectors.LineageExpression}
		if f.direct && len(cols[i].Sources) > 0 {
			cols[i].Transformation = connectors.LineageDirect
		}
	}
	return up, cols, nil
}

// viewQuery returns the one SELECT Query of a view's rule action list.
func viewQuery(root *treeNode) (*treeNode, error) {
	if root.kind != kindList || len(root.items) != 1 || !root.items[0].is("QUERY") {
		return nil, problem("the stored query tree is not one query")
	}
	q := root.items[0]
	if kind, err := q.intField("commandType"); err != nil || kind != cmdSelect {
		return nil, problem("the stored query is not a SELECT")
	}
	return q, nil
}

// cmdSelect is CMD_SELECT, Query.commandType of a SELECT.
const cmdSelect = 1

// upstream lists the relations the tree reads: every relation range table entry at any level
// (subqueries in FROM, WHERE and the select list, CTEs, set operation arms), except the view
// itself (PostgreSQL before 16 keeps two entries for it, OLD and NEW), sorted by schema and
// name. A relation named only in a constant (a regclass literal, nextval's argument) is not
// read and is not upstream, although the rule depends on it.
func (v viewTree) upstream(root *treeNode) ([]connectors.RelationRef, error) {
	seen := map[uint32]bool{}
	var walkErr error
	root.walk(func(n *treeNode) bool {
		if walkErr != nil || !n.is("RANGETBLENTRY") {
			return walkErr == nil
		}
		kind, err := n.intField("rtekind")
		if err != nil {
			walkErr = err
			return false
		}
		if kind == rteRelation {
			relid, err := n.oidField("relid")
			if err != nil {
				walkErr = err
				return false
			}
			if relid != v.oid {
				seen[relid] = true
			}
		}
		return true
	})
	if walkErr != nil {
		return nil, walkErr
	}
	out := make([]connectors.RelationRef, 0, len(seen))
	for relid := range seen {
		rel, ok := v.catalog.rels[relid]
		if !ok {
			return nil, errUnlisted
		}
		out = append(out, connectors.RelationRef{Schema: rel.schema, Name: rel.name})
	}
	slices.SortFunc(out, func(a, b connectors.RelationRef) int {
		return cmp.Or(strings.Compare(a.Schema, b.Schema), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// lineageCatalog names the relations a view's rule depends on, and their live columns.
type lineageCatalog struct {
	rels map[uint32]lineageRelation
}

type lineageRelation struct {
	schema, name string
	// columns are the live columns' names by attnum; attnums lists them in order.
	columns map[int]string
	attnums []int
}

// newLineageCatalog builds the catalog from lineageQuery's parallel arrays: relations (oid,
// schema, name) and columns (relation oid, attnum, name, in attnum order).
func newLineageCatalog(oids []uint32, schemas, names []string, colRels []uint32, colNums []int64, colNames []string) lineageCatalog {
	cat := lineageCatalog{rels: make(map[uint32]lineageRelation, len(oids))}
	for i, oid := range oids {
		if i < len(schemas) && i < len(names) {
			cat.rels[oid] = lineageRelation{schema: schemas[i], name: names[i], columns: map[int]string{}}
		}
	}
	for i, oid := range colRels {
		rel, ok := cat.rels[oid]
		if !ok || i >= len(colNums) || i >= len(colNames) {
			continue
		}
		rel.columns[int(colNums[i])] = colNames[i]
		rel.attnums = append(rel.attnums, int(colNums[i]))
		cat.rels[oid] = rel
	}
	return cat
}

// columnRefs names resolved columns, sorted by schema, table and column, without repeats.
// The resolver checked that each is in the catalog.
func (cat lineageCatalog) columnRefs(cols []sourceColumn) []connectors.ColumnRef {
	out := make([]connectors.ColumnRef, 0, len(cols))
	for _, c := range cols {
		rel := cat.rels[c.rel]
		out = append(out, connectors.ColumnRef{Schema: rel.schema, Table: rel.name, Column: rel.columns[c.attnum]})
	}
	slices.SortFunc(out, func(a, b connectors.ColumnRef) int {
		return cmp.Or(strings.Compare(a.Schema, b.Schema), strings.Compare(a.Table, b.Table),
			strings.Compare(a.Column, b.Column))
	})
	return slices.Compact(out)
}

// lineageProblem is why a view's tree could not be analysed: a short text of this package's
// own, with at most a node type name from the tree (see unsupportedNode).
type lineageProblem struct{ msg string }

func (p *lineageProblem) Error() string { return p.msg }

func problem(msg string) error { return &lineageProblem{msg: msg} }

var (
	errTooLarge  = problem("the stored query tree is larger than 4 MiB, the most lineage reads")
	errUnlisted  = problem("the stored query tree refers to a relation or column the catalog did not list")
	errMalformed = problem("the stored query tree could not be read")
	errTooDeep   = problem("the stored query tree nests too deeply to analyse")
	errTooLong   = problem("the stored query tree is too complex to analyse")
	errBadRef    = problem("a column reference in the stored query tree does not resolve")
)

// problemText is the Problem of a Lineage for err.
func problemText(err error) string {
	var p *lineageProblem
	if errors.As(err, &p) {
		return p.msg
	}
	return errMalformed.Error()
}

// nodeTypeName matches the node type names outfuncs writes (VAR, CASEEXPR, ...): only such a
// name, never other text from the tree, goes into a Problem.
var nodeTypeName = regexp.MustCompile(`^[A-Z][A-Z_]{0,39}$`)

func unsupportedNode(what, name string) error {
	if !nodeTypeName.MatchString(name) {
		name = "?"
	}
	return problem("the stored query tree holds " + what + " " + name + ", which lineage does not analyse")
}

// ---- Reading the node tree -------------------------------------------------------------------

// The node tree's text format (PostgreSQL's outfuncs.c, read back by read.c and readfuncs.c):
// a node is {TYPE :field value :field value ...}; a list is (item item ...), or (i 1 2), (o 1 2),
// (x 1 2) for integer, OID and XID lists and (b 1 2) for a bitmapset; <> is NULL (or an empty
// string); a String value is "text"; a Const's datum is a length then [ byte byte ... ]. Tokens
// are separated by spaces, tabs and newlines, and ( ) { } are tokens of their own; inside a token
// a backslash escapes the next character (outfuncs escapes those four, spaces, backslashes, and
// a <, " or digit that starts a string). Strings are not otherwise quoted: a column may be named
// ":x" or "[", so a node's field takes exactly one value, whatever it looks like.

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindAtom
	kindList
	kindNode
)

// treeNode is one value of the tree: NULL, an atom (a token), a list or a node.
type treeNode struct {
	kind nodeKind
	// name is a node's type ("VAR") or a special list's tag ("i", "o", "x", "b"; "" for a list
	// of values).
	name string
	// text is an atom's token as written, backslashes included (see atomString).
	text   string
	fields []treeField
	items  []*treeNode
}

type treeField struct {
	name  string
	value *treeNode
}

var nullNode = &treeNode{kind: kindNull}

// is reports whether n is a node of type typ.
func (n *treeNode) is(typ string) bool { return n.kind == kindNode && n.name == typ }

// field returns a node's field, or NULL when it has none.
func (n *treeNode) field(name string) *treeNode {
	for _, f := range n.fields {
		if f.name == name {
			return f.value
		}
	}
	return nullNode
}

// intField reads an integer (or enum) field.
func (n *treeNode) intField(name string) (int64, error) {
	f := n.field(name)
	if f.kind != kindAtom {
		return 0, errMalformed
	}
	v, err := strconv.ParseInt(f.text, 10, 64)
	if err != nil {
		return 0, errMalformed
	}
	return v, nil
}

// oidField reads an OID field.
func (n *treeNode) oidField(name string) (uint32, error) {
	f := n.field(name)
	if f.kind != kindAtom {
		return 0, errMalformed
	}
	v, err := strconv.ParseUint(f.text, 10, 32)
	if err != nil {
		return 0, errMalformed
	}
	return uint32(v), nil
}

// boolField reads a boolean field.
func (n *treeNode) boolField(name string) (bool, error) {
	switch f := n.field(name); {
	case f.kind == kindAtom && f.text == "true":
		return true, nil
	case f.kind == kindAtom && f.text == "false":
		return false, nil
	}
	return false, errMalformed
}

// listField reads a list field of values; NULL is the empty list.
func (n *treeNode) listField(name string) ([]*treeNode, error) {
	switch f := n.field(name); {
	case f.kind == kindNull:
		return nil, nil
	case f.kind == kindList && f.name == "":
		return f.items, nil
	}
	return nil, errMalformed
}

// walk calls fn for n and, while fn returns true, for everything under it, depth first.
func (n *treeNode) walk(fn func(*treeNode) bool) {
	if !fn(n) {
		return
	}
	for _, f := range n.fields {
		f.value.walk(fn)
	}
	for _, it := range n.items {
		it.walk(fn)
	}
}

// atomString is the text an atom stands for: a String value's text without its quotes, or a
// token's, with the escaping backslashes removed (read.c's debackslash).
func atomString(tok string) string {
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' {
		tok = tok[1 : len(tok)-1]
	}
	if strings.IndexByte(tok, '\\') < 0 {
		return tok
	}
	var b strings.Builder
	b.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		if tok[i] == '\\' && i+1 < len(tok) {
			i++
		}
		b.WriteByte(tok[i])
	}
	return b.String()
}

// readNodeTree reads a node tree's text, in time linear in its length. It never panics; text
// over maxTreeBytes or nested deeper than maxTreeDepth is refused, like text that is not a tree.
func readNodeTree(text string) (*treeNode, error) {
	if len(text) > maxTreeBytes {
		return nil, errTooLarge
	}
	r := &treeReader{src: text}
	tok, ok := r.next()
	if !ok {
		return nil, errMalformed
	}
	n, err := r.value(tok, 0)
	if err != nil {
		return nil, err
	}
	if _, more := r.next(); more {
		return nil, errMalformed
	}
	return n, nil
}

// treeReader splits the text into tokens as read.c's pg_strtok does.
type treeReader struct {
	src string
	pos int
}

// next returns the next token, or false at the end of the text.
func (r *treeReader) next() (string, bool) {
	for r.pos < len(r.src) && isTreeSpace(r.src[r.pos]) {
		r.pos++
	}
	if r.pos >= len(r.src) {
		return "", false
	}
	start := r.pos
	if isTreeBracket(r.src[r.pos]) {
		r.pos++
		return r.src[start:r.pos], true
	}
	for r.pos < len(r.src) && !isTreeSpace(r.src[r.pos]) && !isTreeBracket(r.src[r.pos]) {
		if r.src[r.pos] == '\\' && r.pos+1 < len(r.src) {
			r.pos++
		}
		r.pos++
	}
	return r.src[start:r.pos], true
}

// peek returns the next token without consuming it.
func (r *treeReader) peek() string {
	save := r.pos
	tok, _ := r.next()
	r.pos = save
	return tok
}

func isTreeSpace(c byte) bool   { return c == ' ' || c == '\n' || c == '\t' }
func isTreeBracket(c byte) bool { return c == '(' || c == ')' || c == '{' || c == '}' }

// value reads the value that starts with tok.
func (r *treeReader) value(tok string, depth int) (*treeNode, error) {
	if depth >= maxTreeDepth {
		return nil, errTooDeep
	}
	switch tok {
	case "(":
		return r.list(depth + 1)
	case "{":
		return r.node(depth + 1)
	case ")", "}":
		return nil, errMalformed
	case "<>":
		return nullNode, nil
	}
	return &treeNode{kind: kindAtom, text: tok}, nil
}

// list reads a list after its "(".
func (r *treeReader) list(depth int) (*treeNode, error) {
	tok, ok := r.next()
	if !ok {
		return nil, errMalformed
	}
	n := &treeNode{kind: kindList}
	if tok == "i" || tok == "o" || tok == "x" || tok == "b" {
		n.name = tok
		return n, r.specialList(n)
	}
	for tok != ")" {
		item, err := r.value(tok, depth)
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, item)
		if tok, ok = r.next(); !ok {
			return nil, errMalformed
		}
	}
	return n, nil
}

// specialList reads the numbers of an integer, OID, XID list or bitmapset, up to its ")".
func (r *treeReader) specialList(n *treeNode) error {
	for {
		tok, ok := r.next()
		switch {
		case !ok:
			return errMalformed
		case tok == ")":
			return nil
		case isTreeBracket(tok[0]):
			return errMalformed
		}
		n.items = append(n.items, &treeNode{kind: kindAtom, text: tok})
	}
}

// node reads a node after its "{": its type, then :field value pairs up to "}". A field's value
// is one value, except a Const's datum, which is a length followed by [ bytes ] (skipped).
func (r *treeReader) node(depth int) (*treeNode, error) {
	typ, ok := r.next()
	if !ok || len(typ) == 1 && isTreeBracket(typ[0]) || typ == "<>" {
		return nil, errMalformed
	}
	n := &treeNode{kind: kindNode, name: typ}
	for {
		tok, ok := r.next()
		switch {
		case !ok:
			return nil, errMalformed
		case tok == "}":
			return n, nil
		case len(tok) < 2 || tok[0] != ':':
			return nil, errMalformed
		}
		vtok, ok := r.next()
		if !ok {
			return nil, errMalformed
		}
		v, err := r.value(vtok, depth)
		if err != nil {
			return nil, err
		}
		if v.kind == kindAtom && r.peek() == "[" {
			if err := r.skipDatum(); err != nil {
				return nil, err
			}
		}
		n.fields = append(n.fields, treeField{name: tok[1:], value: v})
	}
}

// skipDatum skips a datum's "[ byte byte ... ]".
func (r *treeReader) skipDatum() error {
	r.next() // "["
	for {
		tok, ok := r.next()
		switch {
		case !ok || isTreeBracket(tok[0]):
			return errMalformed
		case tok == "]":
			return nil
		}
	}
}

// ---- Resolving output columns ----------------------------------------------------------------

// Range table entry kinds (RTEKind): the same numbers in PostgreSQL 12 to 18.
const (
	rteRelation  = 0
	rteSubquery  = 1
	rteJoin      = 2
	rteFunction  = 3
	rteTableFunc = 4
	rteValues    = 5
	rteCTE       = 6
	rteGroup     = 9 // PostgreSQL 18: grouping expressions
)

// existsSublink is SubLinkType EXISTS_SUBLINK: its subquery's columns feed nothing.
const existsSublink = 0

// sourceColumn is a column of a relation: its OID and attnum.
type sourceColumn struct {
	rel    uint32
	attnum int
}

// columnFlow is what feeds one column: the relation columns and whether the value is one of
// them, unchanged (direct), rather than computed.
type columnFlow struct {
	sources []sourceColumn
	direct  bool
}

// merge adds other's sources; the result is direct only if both are.
func (f *columnFlow) merge(other columnFlow) {
	// Clip: f.sources may be a memoized flow's, which other callers share.
	f.sources = append(slices.Clip(f.sources), other.sources...)
	f.direct = f.direct && other.direct
}

// distinctColumns sorts cols and drops repeats, so that a column read many times (a CTE read
// by each of several others) is carried once.
func distinctColumns(cols []sourceColumn) []sourceColumn {
	slices.SortFunc(cols, func(a, b sourceColumn) int {
		return cmp.Or(cmp.Compare(a.rel, b.rel), cmp.Compare(a.attnum, b.attnum))
	})
	return slices.Clip(slices.Compact(cols))
}

// queryScope is one query level: a Query node and the level it is nested in (varlevelsup and
// ctelevelsup count levels up this chain).
type queryScope struct {
	query  *treeNode
	parent *queryScope
	rtable []*treeNode
}

// up returns the scope levels above s.
func (s *queryScope) up(levels int64) (*queryScope, error) {
	for ; levels > 0 && s != nil; levels-- {
		s = s.parent
	}
	if s == nil || levels != 0 {
		return nil, errBadRef
	}
	return s, nil
}

// rte returns the range table entry at 1-based index.
func (s *queryScope) rte(index int64) (*treeNode, error) {
	if index < 1 || index > int64(len(s.rtable)) || !s.rtable[index-1].is("RANGETBLENTRY") {
		return nil, errBadRef
	}
	return s.rtable[index-1], nil
}

// outputKey names one output column of one query: each Query node sits at one place in the
// tree, so its scope chain, and the column's flow, are always the same.
type outputKey struct {
	query  *treeNode
	attnum int64
}

// lineageResolver follows columns through one view's tree. It is bounded: maxResolveSteps
// steps, maxTreeDepth levels of recursion.
type lineageResolver struct {
	catalog lineageCatalog
	scopes  map[*treeNode]*queryScope
	memo    map[outputKey]columnFlow
	// active are the outputs being resolved: meeting one again is a recursive CTE's
	// self-reference, which adds nothing to what its other arms give.
	active    map[outputKey]bool
	cycleHits int
	steps     int
	depth     int
}

func newLineageResolver(cat lineageCatalog) *lineageResolver {
	return &lineageResolver{catalog: cat, scopes: map[*treeNode]*queryScope{},
		memo: map[outputKey]columnFlow{}, active: map[outputKey]bool{}}
}

// enter counts one step and one level of recursion; leave ends the level.
func (r *lineageResolver) enter() error {
	r.steps++
	r.depth++
	switch {
	case r.steps > maxResolveSteps:
		return errTooLong
	case r.depth > maxTreeDepth:
		return errTooDeep
	}
	return nil
}

func (r *lineageResolver) leave() { r.depth-- }

// scope returns the scope of query q nested in parent.
func (r *lineageResolver) scope(q *treeNode, parent *queryScope) (*queryScope, error) {
	if s, ok := r.scopes[q]; ok {
		return s, nil
	}
	if !q.is("QUERY") {
		return nil, errMalformed
	}
	if kind, err := q.intField("commandType"); err != nil || kind != cmdSelect {
		return nil, problem("the stored query tree holds a statement other than SELECT")
	}
	rtable, err := q.listField("rtable")
	if err != nil {
		return nil, err
	}
	s := &queryScope{query: q, parent: parent, rtable: rtable}
	r.scopes[q] = s
	return s, nil
}

// viewColumns resolves the view's n columns: the top query's outputs 1 to n.
func (r *lineageResolver) viewColumns(q *treeNode, n int) ([]columnFlow, error) {
	s, err := r.scope(q, nil)
	if err != nil {
		return nil, err
	}
	outputs, err := outputCount(q)
	if err != nil {
		return nil, err
	}
	if outputs != n {
		return nil, problem("the stored query's columns do not match the view's")
	}
	flows := make([]columnFlow, n)
	for i := range flows {
		if flows[i], err = r.output(s, int64(i+1)); err != nil {
			return nil, err
		}
	}
	return flows, nil
}

// outputCount counts a query's output columns (its target entries that are not junk).
func outputCount(q *treeNode) (int, error) {
	tlist, err := q.listField("targetList")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, te := range tlist {
		junk, err := te.boolField("resjunk")
		if err != nil || !te.is("TARGETENTRY") {
			return 0, errMalformed
		}
		if !junk {
			n++
		}
	}
	return n, nil
}

// output resolves output column attnum of the query of scope s (memoized; a column met again
// while it is being resolved is a recursive CTE's self-reference, and adds nothing).
func (r *lineageResolver) output(s *queryScope, attnum int64) (columnFlow, error) {
	key := outputKey{s.query, attnum}
	if f, ok := r.memo[key]; ok {
		return f, nil
	}
	if r.active[key] {
		r.cycleHits++
		return columnFlow{direct: true}, nil
	}
	if err := r.enter(); err != nil {
		return columnFlow{}, err
	}
	defer r.leave()
	r.active[key] = true
	hits := r.cycleHits
	f, err := r.computeOutput(s, attnum)
	f.sources = distinctColumns(f.sources)
	delete(r.active, key)
	if err == nil && hits == r.cycleHits {
		r.memo[key] = f
	}
	return f, err
}

func (r *lineageResolver) computeOutput(s *queryScope, attnum int64) (columnFlow, error) {
	if setop := s.query.field("setOperations"); setop.kind != kindNull {
		return r.setOpOutput(s, setop, attnum)
	}
	tlist, err := s.query.listField("targetList")
	if err != nil {
		return columnFlow{}, err
	}
	for _, te := range tlist {
		resno, err := te.intField("resno")
		if err != nil {
			return columnFlow{}, err
		}
		if junk, err := te.boolField("resjunk"); err != nil || junk || resno != attnum {
			continue
		}
		return r.targetEntry(s, te)
	}
	return columnFlow{}, errBadRef
}

// setOpOutput resolves an output column of a set operation (UNION, INTERSECT, EXCEPT): the
// column of every arm. (The query's own target list names only the leftmost arm.)
func (r *lineageResolver) setOpOutput(s *queryScope, n *treeNode, attnum int64) (columnFlow, error) {
	if err := r.enter(); err != nil {
		return columnFlow{}, err
	}
	defer r.leave()
	switch n.name {
	case "SETOPERATIONSTMT":
		left, err := r.setOpOutput(s, n.field("larg"), attnum)
		if err != nil {
			return columnFlow{}, err
		}
		right, err := r.setOpOutput(s, n.field("rarg"), attnum)
		if err != nil {
			return columnFlow{}, err
		}
		left.merge(right)
		return left, nil
	case "RANGETBLREF":
		index, err := n.intField("rtindex")
		if err != nil {
			return columnFlow{}, err
		}
		rte, err := s.rte(index)
		if err != nil {
			return columnFlow{}, err
		}
		return r.rteColumn(s, rte, attnum)
	}
	return columnFlow{}, unsupportedNode("set operation node", n.name)
}

// targetEntry resolves a target entry of scope s's query: direct when its expression is one
// column reference that resolves directly.
func (r *lineageResolver) targetEntry(s *queryScope, te *treeNode) (columnFlow, error) {
	expr := te.field("expr")
	if expr.is("VAR") {
		return r.variable(s, expr)
	}
	f := columnFlow{}
	err := r.collect(s, expr, &f)
	return f, err
}

// variable resolves a Var: the column varattno of range table entry varno, varlevelsup query
// levels up.
func (r *lineageResolver) variable(s *queryScope, v *treeNode) (columnFlow, error) {
	varno, err1 := v.intField("varno")
	attnum, err2 := v.intField("varattno")
	levels, err3 := v.intField("varlevelsup")
	if err := errors.Join(err1, err2, err3); err != nil {
		return columnFlow{}, errMalformed
	}
	owner, err := s.up(levels)
	if err != nil {
		return columnFlow{}, err
	}
	rte, err := owner.rte(varno)
	if err != nil {
		return columnFlow{}, err
	}
	return r.rteColumn(owner, rte, attnum)
}

// rteColumn resolves column attnum (0: the whole row) of range table entry rte of scope s.
func (r *lineageResolver) rteColumn(s *queryScope, rte *treeNode, attnum int64) (columnFlow, error) {
	if err := r.enter(); err != nil {
		return columnFlow{}, err
	}
	defer r.leave()
	kind, err := rte.intField("rtekind")
	if err != nil {
		return columnFlow{}, err
	}
	if kind == rteRelation {
		return r.relationColumn(rte, attnum)
	}
	if attnum == 0 {
		return r.wholeRow(s, rte)
	}
	switch kind {
	case rteSubquery:
		sub, err := r.scope(rte.field("subquery"), s)
		if err != nil {
			return columnFlow{}, err
		}
		return r.output(sub, attnum)
	case rteJoin:
		return r.aliasColumn(s, rte, "joinaliasvars", attnum)
	case rteGroup:
		return r.aliasColumn(s, rte, "groupexprs", attnum)
	case rteFunction:
		return r.functionColumn(s, rte, attnum)
	case rteTableFunc:
		f := columnFlow{}
		err := r.collectNode(s, rte.field("tablefunc"), "TABLEFUNC", &f)
		return f, err
	case rteValues:
		return r.valuesColumn(s, rte, attnum)
	case rteCTE:
		return r.cteColumn(s, rte, attnum)
	}
	return columnFlow{}, problem("the stored query tree holds a range table entry of kind " +
		strconv.FormatInt(kind, 10) + ", which lineage does not analyse")
}

// relationColumn resolves a column of a relation: itself (direct), all its columns for a
// whole-row reference, nothing for a system column (ctid, xmin, ...).
func (r *lineageResolver) relationColumn(rte *treeNode, attnum int64) (columnFlow, error) {
	relid, err := rte.oidField("relid")
	if err != nil {
		return columnFlow{}, err
	}
	rel, ok := r.catalog.rels[relid]
	if !ok {
		return columnFlow{}, errUnlisted
	}
	switch {
	case attnum < 0:
		return columnFlow{}, nil
	case attnum == 0:
		f := columnFlow{}
		for _, a := range rel.attnums {
			f.sources = append(f.sources, sourceColumn{relid, a})
		}
		return f, nil
	}
	if _, ok := rel.columns[int(attnum)]; !ok {
		return columnFlow{}, errUnlisted
	}
	return columnFlow{sources: []sourceColumn{{relid, int(attnum)}}, direct: true}, nil
}

// wholeRow resolves a whole-row reference to a range table entry that is not a relation: every
// column of it (as many as its eref alias names), computed.
func (r *lineageResolver) wholeRow(s *queryScope, rte *treeNode) (columnFlow, error) {
	names, err := rte.field("eref").listField("colnames")
	if err != nil {
		return columnFlow{}, err
	}
	kind, _ := rte.intField("rtekind")
	f := columnFlow{}
	for i := range names {
		if kind == rteJoin && atomString(names[i].text) == "" {
			continue // a dropped column of a join's input
		}
		c, err := r.rteColumn(s, rte, int64(i+1))
		if err != nil {
			return columnFlow{}, err
		}
		f.merge(c)
	}
	f.direct = false
	return f, nil
}

// aliasColumn resolves a column of a join (joinaliasvars: a Var of an input, or for a merged
// USING column of a full join an expression over both) or of PostgreSQL 18's grouping step
// (groupexprs).
func (r *lineageResolver) aliasColumn(s *queryScope, rte *treeNode, field string, attnum int64) (columnFlow, error) {
	aliases, err := rte.listField(field)
	if err != nil {
		return columnFlow{}, err
	}
	if attnum > int64(len(aliases)) || aliases[attnum-1].kind == kindNull {
		return columnFlow{}, errBadRef
	}
	alias := aliases[attnum-1]
	if alias.is("VAR") {
		return r.variable(s, alias)
	}
	f := columnFlow{}
	err = r.collect(s, alias, &f)
	return f, err
}

// functionColumn resolves a column of a function in FROM (ROWS FROM may hold several, each
// giving funccolcount columns; WITH ORDINALITY adds one, fed by nothing): computed from the
// function's arguments.
func (r *lineageResolver) functionColumn(s *queryScope, rte *treeNode, attnum int64) (columnFlow, error) {
	funcs, err := rte.listField("functions")
	if err != nil {
		return columnFlow{}, err
	}
	first := int64(1)
	for _, fn := range funcs {
		if !fn.is("RANGETBLFUNCTION") {
			return columnFlow{}, unsupportedNode("function entry", fn.name)
		}
		count, err := fn.intField("funccolcount")
		if err != nil || count < 0 {
			return columnFlow{}, errMalformed
		}
		if attnum < first+count {
			f := columnFlow{}
			err := r.collect(s, fn.field("funcexpr"), &f)
			return f, err
		}
		first += count
	}
	if ordinality, err := rte.boolField("funcordinality"); err == nil && ordinality && attnum == first {
		return columnFlow{}, nil
	}
	return columnFlow{}, errBadRef
}

// valuesColumn resolves a column of VALUES: the expression at that position in every row.
func (r *lineageResolver) valuesColumn(s *queryScope, rte *treeNode, attnum int64) (columnFlow, error) {
	rowsList, err := rte.listField("values_lists")
	if err != nil {
		return columnFlow{}, err
	}
	f := columnFlow{direct: true}
	for _, row := range rowsList {
		if row.kind != kindList || attnum > int64(len(row.items)) {
			return columnFlow{}, errBadRef
		}
		expr := row.items[attnum-1]
		var c columnFlow
		if expr.is("VAR") {
			c, err = r.variable(s, expr)
		} else {
			err = r.collect(s, expr, &c)
		}
		if err != nil {
			return columnFlow{}, err
		}
		f.merge(c)
	}
	return f, nil
}

// cteColumn resolves a column of a WITH query: the CTE named ctename in the cteList of the
// query ctelevelsup levels up.
func (r *lineageResolver) cteColumn(s *queryScope, rte *treeNode, attnum int64) (columnFlow, error) {
	levels, err := rte.intField("ctelevelsup")
	if err != nil {
		return columnFlow{}, err
	}
	name := rte.field("ctename")
	owner, err := s.up(levels)
	if err != nil || name.kind != kindAtom {
		return columnFlow{}, errBadRef
	}
	ctes, err := owner.query.listField("cteList")
	if err != nil {
		return columnFlow{}, err
	}
	for _, cte := range ctes {
		if !cte.is("COMMONTABLEEXPR") || cte.field("ctename").kind != kindAtom ||
			atomString(cte.field("ctename").text) != atomString(name.text) {
			continue
		}
		sub, err := r.scope(cte.field("ctequery"), owner)
		if err != nil {
			return columnFlow{}, err
		}
		if err := searchOrCycleColumn(cte, sub.query, attnum); err != nil {
			return columnFlow{}, err
		}
		return r.output(sub, attnum)
	}
	return columnFlow{}, errBadRef
}

// searchOrCycleColumn refuses a column that a CTE's SEARCH or CYCLE clause adds: the stored
// CTE query does not have it (the rewriter adds it when the view is used).
func searchOrCycleColumn(cte, query *treeNode, attnum int64) error {
	if cte.field("search_clause").kind == kindNull && cte.field("cycle_clause").kind == kindNull {
		return nil
	}
	n, err := outputCount(query)
	if err != nil {
		return err
	}
	if attnum > int64(n) {
		return problem("the view reads a column that a CTE's SEARCH or CYCLE clause adds, which lineage does not analyse")
	}
	return nil
}

// exprNodes are the expression node types (by outfuncs name, in PostgreSQL 12 to 18) whose
// value is computed from their fields' values alone: every column reference in them feeds the
// expression. Var, SubLink and WindowFunc are handled apart; any other node type in an
// expression is a problem.
var exprNodes = map[string]bool{
	"CONST": true, "PARAM": true, "AGGREF": true, "GROUPINGFUNC": true, "SUBSCRIPTINGREF": true,
	"FUNCEXPR": true, "NAMEDARGEXPR": true, "OPEXPR": true, "DISTINCTEXPR": true, "NULLIFEXPR": true,
	"SCALARARRAYOPEXPR": true, "BOOLEXPR": true, "FIELDSELECT": true, "FIELDSTORE": true,
	"RELABELTYPE": true, "COERCEVIAIO": true, "ARRAYCOERCEEXPR": true, "CONVERTROWTYPEEXPR": true,
	"COLLATEEXPR": true, "COLLATE": true, "CASEEXPR": true, "CASE": true, "CASEWHEN": true, "WHEN": true,
	"CASETESTEXPR": true, "ARRAYEXPR": true, "ARRAY": true, "ROWEXPR": true, "ROW": true,
	"ROWCOMPAREEXPR": true, "ROWCOMPARE": true, "COALESCEEXPR": true, "COALESCE": true,
	"MINMAXEXPR": true, "MINMAX": true, "SQLVALUEFUNCTION": true, "XMLEXPR": true, "NULLTEST": true,
	"BOOLEANTEST": true, "COERCETODOMAIN": true, "COERCETODOMAINVALUE": true, "SETTODEFAULT": true,
	"NEXTVALUEEXPR": true, "TARGETENTRY": true, "SORTGROUPCLAUSE": true,
	"JSONCONSTRUCTOREXPR": true, "JSONVALUEEXPR": true, "JSONISPREDICATE": true, "JSONFORMAT": true,
	"JSONRETURNING": true, "JSONEXPR": true, "JSONBEHAVIOR": true,
}

// collect adds to f every column that feeds expression n of scope s's query.
func (r *lineageResolver) collect(s *queryScope, n *treeNode, f *columnFlow) error {
	f.direct = false
	switch n.kind {
	case kindNull, kindAtom:
		return nil
	case kindList:
		for _, it := range n.items {
			if err := r.collect(s, it, f); err != nil {
				return err
			}
		}
		return nil
	}
	switch n.name {
	case "VAR":
		c, err := r.variable(s, n)
		f.sources = append(slices.Clip(f.sources), c.sources...)
		return err
	case "SUBLINK":
		return r.sublink(s, n, f)
	case "WINDOWFUNC":
		if err := r.fields(s, n, f); err != nil {
			return err
		}
		return r.window(s, n, f)
	}
	if !exprNodes[n.name] {
		return unsupportedNode("expression node", n.name)
	}
	return r.fields(s, n, f)
}

// collectNode is collect for a node that must be of type typ (whose fields are expressions).
func (r *lineageResolver) collectNode(s *queryScope, n *treeNode, typ string, f *columnFlow) error {
	if !n.is(typ) {
		return unsupportedNode("node", n.name)
	}
	return r.fields(s, n, f)
}

// fields collects every field of node n.
func (r *lineageResolver) fields(s *queryScope, n *treeNode, f *columnFlow) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	for _, fl := range n.fields {
		if err := r.collect(s, fl.value, f); err != nil {
			return err
		}
	}
	return nil
}

// sublink collects a subquery expression: its test expression (x IN (...)) and, unless it is
// EXISTS, the subquery's output columns.
func (r *lineageResolver) sublink(s *queryScope, n *treeNode, f *columnFlow) error {
	if err := r.collect(s, n.field("testexpr"), f); err != nil {
		return err
	}
	kind, err := n.intField("subLinkType")
	if err != nil || kind == existsSublink {
		return err
	}
	sub, err := r.scope(n.field("subselect"), s)
	if err != nil {
		return err
	}
	count, err := outputCount(sub.query)
	if err != nil {
		return err
	}
	for i := 1; i <= count; i++ {
		c, err := r.output(sub, int64(i))
		if err != nil {
			return err
		}
		f.sources = append(slices.Clip(f.sources), c.sources...)
	}
	return nil
}

// window collects a window function's PARTITION BY and ORDER BY expressions: the window
// clause winref of the query names them as target entries by ressortgroupref.
func (r *lineageResolver) window(s *queryScope, n *treeNode, f *columnFlow) error {
	winref, err := n.intField("winref")
	if err != nil {
		return err
	}
	clauses, err := s.query.listField("windowClause")
	if err != nil {
		return err
	}
	for _, wc := range clauses {
		if ref, err := wc.intField("winref"); err != nil || ref != winref {
			continue
		}
		for _, field := range []string{"partitionClause", "orderClause"} {
			sorts, err := wc.listField(field)
			if err != nil {
				return err
			}
			for _, sgc := range sorts {
				if err := r.sortGroupTarget(s, sgc, f); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return errBadRef
}

// sortGroupTarget collects the target entry that a SortGroupClause names.
func (r *lineageResolver) sortGroupTarget(s *queryScope, sgc *treeNode, f *columnFlow) error {
	ref, err := sgc.intField("tleSortGroupRef")
	if err != nil {
		return err
	}
	tlist, err := s.query.listField("targetList")
	if err != nil {
		return err
	}
	for _, te := range tlist {
		if got, err := te.intField("ressortgroupref"); err == nil && got == ref {
			return r.collect(s, te.field("expr"), f)
		}
	}
	return errBadRef
}
