package sqlite

import (
	"slices"
	"strings"
)

// SQLite keeps constraint names, CHECK constraints, index expressions and what a trigger does
// only in the text of the CREATE TABLE, CREATE INDEX and CREATE TRIGGER statements in
// sqlite_schema. What follows reads those statements just enough to find them: a tokenizer that
// knows SQLite's quoting and comments, and parsers for the parts of the three statements that
// hold names, column lists, expressions and trigger bodies. Every piece of text they return is a
// slice of the statement, as written. A statement they cannot follow yields nothing (the names
// Extract makes up, an empty expression, a trigger without timing or events), never an error.

type tokenKind int

const (
	tokWord   tokenKind = iota // a keyword or a bare identifier
	tokQuoted                  // a "quoted", `quoted` or [quoted] identifier
	tokString                  // a 'string' (SQLite also takes one as an identifier)
	tokNumber
	tokPunct // one character of punctuation or an operator
)

type token struct {
	kind       tokenKind
	start, end int    // byte offsets in the statement
	text       string // a word as written; a quoted identifier or string unquoted
}

// tokenize splits an SQL statement into tokens, leaving out spaces and comments.
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '"' || c == '`' || c == '\'' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			var b strings.Builder
			j := i + 1
			for j < len(s) {
				if s[j] != closer {
					b.WriteByte(s[j])
					j++
					continue
				}
				if closer != ']' && j+1 < len(s) && s[j+1] == closer { // a doubled quote
					b.WriteByte(closer)
					j += 2
					continue
				}
				j++
				break
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, token{kind: kind, start: i, end: j, text: b.String()})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (wordByte(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tokNumber, start: i, end: j, text: s[i:j]})
			i = j
		case wordByte(c):
			j := i + 1
			for j < len(s) && (wordByte(s[j]) || s[j] == '$') {
				j++
			}
			toks = append(toks, token{kind: tokWord, start: i, end: j, text: s[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tokPunct, start: i, end: i + 1, text: s[i : i+1]})
			i++
		}
	}
	return toks
}

// wordByte reports whether c may be part of a bare identifier: SQLite takes every byte of a
// multi-byte UTF-8 character as one.
func wordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// is reports whether t is the keyword kw (in upper case).
func (t token) is(kw string) bool { return t.kind == tokWord && asciiEqualFold(t.text, kw) }

func (t token) isPunct(c byte) bool { return t.kind == tokPunct && t.text[0] == c }

// name is the identifier t stands for, if it can stand for one.
func (t token) name() (string, bool) {
	switch t.kind {
	case tokWord, tokQuoted, tokString:
		return t.text, true
	}
	return "", false
}

// closing returns the position of the ')' that closes the '(' at toks[i], or len(toks).
func closing(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch {
		case toks[j].isPunct('('):
			depth++
		case toks[j].isPunct(')'):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(toks)
}

// splitCommas splits toks at the commas outside parentheses.
func splitCommas(toks []token) [][]token {
	var items [][]token
	depth, start := 0, 0
	for j, t := range toks {
		switch {
		case t.isPunct('('):
			depth++
		case t.isPunct(')'):
			depth--
		case t.isPunct(',') && depth == 0:
			items = append(items, toks[start:j])
			start = j + 1
		}
	}
	return append(items, toks[start:])
}

// nameList reads the parenthesized column list at toks[i] (each item's first name: a column,
// perhaps followed by COLLATE and ASC or DESC) and returns the position after it.
func nameList(toks []token, i int) ([]string, int) {
	if i >= len(toks) || !toks[i].isPunct('(') {
		return nil, i
	}
	end := closing(toks, i)
	var names []string
	for _, item := range splitCommas(toks[i+1 : end]) {
		n := ""
		for _, t := range item {
			if v, ok := t.name(); ok {
				n = v
				break
			}
		}
		names = append(names, n)
	}
	return names, end + 1
}

// headerEnd skips "CREATE [TEMP|TEMPORARY|UNIQUE] <object> [IF NOT EXISTS] [schema.]name" and
// returns the position after it, or -1 if toks does not start so.
func headerEnd(toks []token, object string) int {
	i := 0
	next := func(kw string) bool {
		if i < len(toks) && toks[i].is(kw) {
			i++
			return true
		}
		return false
	}
	if !next("CREATE") {
		return -1
	}
	_ = next("TEMP") || next("TEMPORARY") || next("UNIQUE")
	if !next(object) {
		return -1
	}
	// IF is a name too ("CREATE TABLE if (a)"); IF NOT EXISTS is the clause.
	if i+1 < len(toks) && toks[i].is("IF") && toks[i+1].is("NOT") {
		i += 2
		if !next("EXISTS") {
			return -1
		}
	}
	if i >= len(toks) {
		return -1
	}
	if _, ok := toks[i].name(); !ok {
		return -1
	}
	i++
	if i+1 < len(toks) && toks[i].isPunct('.') {
		i += 2
	}
	return i
}

// declaredKey is a PRIMARY KEY, UNIQUE or FOREIGN KEY constraint as a CREATE TABLE statement
// declares it; name is "" when it has no CONSTRAINT name.
type declaredKey struct {
	name     string
	columns  []string
	refTable string
}

// declaredCheck is a CHECK constraint as a CREATE TABLE statement declares it: its CONSTRAINT
// name ("" when it has none) and its expression, the text between the parentheses as written
// (without the spaces and comments that open and close it).
type declaredCheck struct {
	name       string
	expression string
}

// tableDDL holds the key and CHECK constraints of a CREATE TABLE statement, each kind in
// declaration order (the checks of columns and of the table together, in the statement's order).
type tableDDL struct {
	primary *declaredKey
	uniques []declaredKey
	foreign []declaredKey
	checks  []declaredCheck
}

// parseCreateTable reads the key and CHECK constraints of a CREATE TABLE statement: column
// constraints ("CONSTRAINT n PRIMARY KEY", "UNIQUE", "REFERENCES t", "CHECK (e)") and table
// constraints ("CONSTRAINT n UNIQUE (a, b)", ...; SQLite lets them go without commas between
// them).
func parseCreateTable(stmt string) tableDDL {
	var d tableDDL
	toks := tokenize(stmt)
	i := headerEnd(toks, "TABLE")
	if i < 0 || i >= len(toks) || !toks[i].isPunct('(') {
		return d // CREATE TABLE ... AS SELECT is stored as a column list, so this is not it
	}
	for _, item := range splitCommas(toks[i+1 : closing(toks, i)]) {
		if len(item) == 0 {
			continue
		}
		if tableConstraintStart(item[0]) {
			d.tableConstraints(stmt, item)
		} else {
			d.columnConstraints(stmt, item)
		}
	}
	return d
}

// tableConstraintStart reports whether t starts a table constraint. None of these keywords can
// be a bare column name.
func tableConstraintStart(t token) bool {
	return t.is("CONSTRAINT") || t.is("PRIMARY") || t.is("UNIQUE") || t.is("CHECK") || t.is("FOREIGN")
}

// tableConstraints reads the table constraints of one item of the column list (toks, a slice of
// stmt's tokens).
func (d *tableDDL) tableConstraints(stmt string, toks []token) {
	for i := 0; i < len(toks); {
		name := ""
		if toks[i].is("CONSTRAINT") {
			if i+1 < len(toks) {
				name, _ = toks[i+1].name()
			}
			i += 2
			if i >= len(toks) {
				return
			}
		}
		switch t := toks[i]; {
		case t.is("PRIMARY"):
			i++
			if i < len(toks) && toks[i].is("KEY") {
				i++
			}
			var cols []string
			cols, i = nameList(toks, i)
			d.primary = &declaredKey{name: name, columns: cols}
		case t.is("UNIQUE"):
			var cols []string
			cols, i = nameList(toks, i+1)
			d.uniques = append(d.uniques, declaredKey{name: name, columns: cols})
		case t.is("FOREIGN"):
			i++
			if i < len(toks) && toks[i].is("KEY") {
				i++
			}
			var cols []string
			cols, i = nameList(toks, i)
			ref := ""
			if i+1 < len(toks) && toks[i].is("REFERENCES") {
				ref, _ = toks[i+1].name()
				i += 2
			}
			d.foreign = append(d.foreign, declaredKey{name: name, columns: cols, refTable: ref})
		case t.is("CHECK"):
			c, end, ok := checkClause(stmt, toks, i)
			if ok {
				c.name = name
				d.checks = append(d.checks, c)
			}
			i = end + 1
		default: // something this parser does not know
			i++
		}
		// The rest of the constraint: up to the next one, outside parentheses.
		for i < len(toks) && !tableConstraintStart(toks[i]) {
			if toks[i].isPunct('(') {
				i = closing(toks, i)
			}
			i++
		}
	}
}

// columnConstraints reads the constraints of one column definition (toks, a slice of stmt's
// tokens).
func (d *tableDDL) columnConstraints(stmt string, toks []token) {
	column, ok := toks[0].name()
	if !ok {
		return
	}
	pending := "" // the CONSTRAINT name of the next constraint
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.isPunct('('):
			i = closing(toks, i)
			continue
		case t.is("CONSTRAINT"):
			if i+1 < len(toks) {
				pending, _ = toks[i+1].name()
			}
			i++
			continue
		case t.is("PRIMARY"):
			d.primary = &declaredKey{name: pending, columns: []string{column}}
		case t.is("UNIQUE"):
			d.uniques = append(d.uniques, declaredKey{name: pending, columns: []string{column}})
		case t.is("REFERENCES"):
			ref := ""
			if i+1 < len(toks) {
				ref, _ = toks[i+1].name()
				i++
			}
			d.foreign = append(d.foreign, declaredKey{name: pending, columns: []string{column}, refTable: ref})
		case t.is("CHECK"):
			c, end, ok := checkClause(stmt, toks, i)
			if ok {
				c.name = pending
				d.checks = append(d.checks, c)
			}
			i = end
		case t.is("NOT"), t.is("NULL"), t.is("DEFAULT"), t.is("COLLATE"), t.is("GENERATED"), t.is("AS"):
			// another constraint, which takes the pending name
		default:
			continue // the type, or the rest of a constraint
		}
		pending = ""
	}
}

// checkClause reads the CHECK constraint whose keyword is toks[i]: "CHECK (expression)". It
// returns the check (without a name) and the position of its closing parenthesis; ok is false,
// and end is i, when no parenthesized expression follows.
func checkClause(stmt string, toks []token, i int) (c declaredCheck, end int, ok bool) {
	if i+1 >= len(toks) || !toks[i+1].isPunct('(') {
		return declaredCheck{}, i, false
	}
	end = closing(toks, i+1)
	if end >= len(toks) {
		return declaredCheck{}, i, false
	}
	return declaredCheck{expression: span(stmt, toks[i+2:end])}, end, true
}

// span is the text of stmt that toks (consecutive tokens of stmt) cover, from the start of the
// first to the end of the last, spaces and comments between them included; "" for no tokens.
func span(stmt string, toks []token) string {
	if len(toks) == 0 {
		return ""
	}
	return stmt[toks[0].start:toks[len(toks)-1].end]
}

// uniqueName is the CONSTRAINT name of the UNIQUE constraint on columns, if exactly one name is
// declared for those columns.
func (d tableDDL) uniqueName(columns []string) string {
	name := ""
	for _, u := range d.uniques {
		if u.name == "" || !sameNames(u.columns, columns) {
			continue
		}
		if name != "" && name != u.name {
			return ""
		}
		name = u.name
	}
	return name
}

// foreignName is the CONSTRAINT name of the foreign key that is the ordinal-th (from 1) of total
// in declaration order, with columns and refTable. When the statement declares total foreign
// keys, the ordinal-th is it if it matches; otherwise the only one that matches is.
func (d tableDDL) foreignName(ordinal, total int, columns []string, refTable string) string {
	matches := func(k declaredKey) bool {
		return sameNames(k.columns, columns) && asciiEqualFold(k.refTable, refTable)
	}
	if len(d.foreign) == total && matches(d.foreign[ordinal-1]) {
		return d.foreign[ordinal-1].name
	}
	name, n := "", 0
	for _, k := range d.foreign {
		if matches(k) {
			name, n = k.name, n+1
		}
	}
	if n == 1 {
		return name
	}
	return ""
}

// indexDDL is what a CREATE INDEX statement says beyond the pragmas: each key column's text as
// written (COLLATE and ASC or DESC left out), and a partial index's WHERE clause.
type indexDDL struct {
	columns   []string
	predicate string
}

func parseCreateIndex(stmt string) indexDDL {
	var d indexDDL
	toks := tokenize(stmt)
	i := headerEnd(toks, "INDEX")
	if i < 0 || i+2 >= len(toks) || !toks[i].is("ON") || !toks[i+2].isPunct('(') {
		return d
	}
	i += 2
	end := closing(toks, i)
	if end >= len(toks) {
		return d
	}
	for _, item := range splitCommas(toks[i+1 : end]) {
		if n := len(item); n > 0 && (item[n-1].is("ASC") || item[n-1].is("DESC")) {
			item = item[:n-1]
		}
		if n := len(item); n > 1 && item[n-2].is("COLLATE") {
			item = item[:n-2]
		}
		text := ""
		if len(item) > 0 {
			text = stmt[item[0].start:item[len(item)-1].end]
		}
		d.columns = append(d.columns, text)
	}
	rest := toks[end+1:]
	if n := len(rest); n > 0 && rest[n-1].isPunct(';') {
		rest = rest[:n-1]
	}
	if len(rest) > 1 && rest[0].is("WHERE") {
		d.predicate = stmt[rest[1].start:rest[len(rest)-1].end]
	}
	return d
}

// Trigger timings, as Trigger.Timing spells them.
const (
	timingBefore    = "BEFORE"
	timingAfter     = "AFTER"
	timingInsteadOf = "INSTEAD OF"
)

// triggerDDL is what a CREATE TRIGGER statement says about when its trigger fires and what it
// does. SQLite triggers fire FOR EACH ROW, for one event each.
type triggerDDL struct {
	// timing is timingBefore, timingAfter or timingInsteadOf; BEFORE when none is written, as
	// SQLite defaults.
	timing string
	// event is "INSERT", "UPDATE" (UPDATE OF columns too) or "DELETE".
	event string
	// condition is the WHEN clause's expression as written, "" without one.
	condition string
	// body is the statements between BEGIN and END as written, from the first statement's
	// first token to the last one's semicolon.
	body string
}

// parseCreateTrigger reads "CREATE [TEMP] TRIGGER [IF NOT EXISTS] [schema.]name [BEFORE | AFTER
// | INSTEAD OF] {DELETE | INSERT | UPDATE [OF column, ...]} ON [schema.]table [FOR EACH ROW]
// [WHEN expression] BEGIN statement; ... END". ok is false, and d empty, for a statement it
// cannot follow.
//
// The body runs to the statement's last token, which must be END: an END inside it (a CASE
// expression's, a string's, a quoted name's) does not end it. The WHEN expression runs to the
// first BEGIN outside parentheses that is not a qualified column's name (new.begin).
func parseCreateTrigger(stmt string) (d triggerDDL, ok bool) {
	toks := tokenize(stmt)
	i := headerEnd(toks, "TRIGGER")
	if i < 0 {
		return triggerDDL{}, false
	}
	d.timing, i = triggerTiming(toks, i)
	if i >= len(toks) {
		return triggerDDL{}, false
	}
	switch t := toks[i]; {
	case t.is("INSERT"), t.is("UPDATE"), t.is("DELETE"):
		d.event = strings.ToUpper(t.text)
	default:
		return triggerDDL{}, false
	}
	for i < len(toks) && !toks[i].is("ON") { // UPDATE OF a, b: the columns run up to ON
		i++
	}
	i++
	if i >= len(toks) {
		return triggerDDL{}, false
	}
	if _, isName := toks[i].name(); !isName {
		return triggerDDL{}, false
	}
	i++
	if i+1 < len(toks) && toks[i].isPunct('.') {
		i += 2
	}
	if i+2 < len(toks) && toks[i].is("FOR") && toks[i+1].is("EACH") && toks[i+2].is("ROW") {
		i += 3
	}
	begin := blockStart(toks, i)
	switch {
	case begin < 0:
		return triggerDDL{}, false
	case toks[i].is("WHEN"):
		d.condition = span(stmt, toks[i+1:begin])
	case begin != i:
		return triggerDDL{}, false
	}
	end := blockEnd(toks)
	if end <= begin {
		return triggerDDL{}, false
	}
	d.body = span(stmt, toks[begin+1:end])
	return d, true
}

// triggerTiming reads the timing at toks[i], if one is written there, and returns it with the
// position after it.
func triggerTiming(toks []token, i int) (string, int) {
	switch {
	case i < len(toks) && toks[i].is(timingBefore):
		return timingBefore, i + 1
	case i < len(toks) && toks[i].is(timingAfter):
		return timingAfter, i + 1
	case i+1 < len(toks) && toks[i].is("INSTEAD") && toks[i+1].is("OF"):
		return timingInsteadOf, i + 2
	}
	return timingBefore, i
}

// blockStart is the position of the first BEGIN at or after toks[i] that is outside parentheses
// and not a qualified name (after a '.'), or -1.
func blockStart(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch t := toks[j]; {
		case t.isPunct('('):
			depth++
		case t.isPunct(')'):
			depth--
		case depth == 0 && t.is("BEGIN") && !(j > 0 && toks[j-1].isPunct('.')):
			return j
		}
	}
	return -1
}

// blockEnd is the position of the statement's last token if it is END (semicolons after it left
// out), or -1.
func blockEnd(toks []token) int {
	n := len(toks) - 1
	for n >= 0 && toks[n].isPunct(';') {
		n--
	}
	if n < 0 || !toks[n].is("END") {
		return -1
	}
	return n
}

// sameNames reports whether a and b name the same columns in the same order, as SQLite
// compares names: ASCII case-insensitively.
func sameNames(a, b []string) bool {
	return slices.EqualFunc(a, b, asciiEqualFold)
}

// asciiEqualFold is SQLite's name comparison: ASCII letters in either case, every other byte
// itself.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
