package lineage

import (
	"fmt"
	"strings"
)

// SQLite definitions are tokenized here by SQLite's lexical rules (tokenize.c): what a token is
// decides what a name is, and SQLite's differ from MySQL's ("x" is a name, not a string; a
// backslash escapes nothing; -- needs no space after it). The view's SELECT is then written out
// token by token in MySQL's spelling for the parser.

// tokenKind is the kind of a SQLite token.
type tokenKind int

const (
	tokWord    tokenKind = iota // a bare identifier or function name that is not a keyword
	tokKeyword                  // a bare word on SQLite's keyword list
	tokQuoted                   // a quoted identifier: "x", `x` or [x]
	tokString                   // a string literal: 'x'
	tokBlob                     // a blob literal: x'00'
	tokNumber                   // a numeric literal
	tokOp                       // an operator or punctuation
)

// sqliteToken is one token of a SQLite statement.
type sqliteToken struct {
	kind tokenKind
	// text is a word's or number's text as written, a keyword in upper case, a quoted
	// identifier's or string's value (unquoted), a blob's or operator's text.
	text string
	// raw is the token as written.
	raw string
}

func (t sqliteToken) is(kind tokenKind, text string) bool { return t.kind == kind && t.text == text }

// sqliteKeywords are SQLite's keywords (https://sqlite.org/lang_keywords.html).
var sqliteKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC
		ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT
		CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP
		DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END
		ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM
		FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER
		INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED
		NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION
		PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE
		RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP
		TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES
		VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT`) {
		sqliteKeywords[k] = true
	}
}

// parseSQLite parses a SQLite CREATE VIEW statement (or a bare query).
func parseSQLite(definition string) (parsedView, error) {
	toks, err := sqliteTokens(definition)
	if err != nil {
		return parsedView{}, err
	}
	body, names, err := sqliteViewBody(toks)
	if err != nil {
		return parsedView{}, err
	}
	text, err := mysqlSpelling(body)
	if err != nil {
		return parsedView{}, err
	}
	p, err := vitessParser()
	if err != nil {
		return parsedView{}, problemf("the SQL parser is not available")
	}
	stmt, err := parseQuery(p, text, SQLite)
	return parsedView{stmt: stmt, columnNames: names}, err
}

// sqliteViewBody splits a CREATE [TEMP] VIEW [IF NOT EXISTS] [schema.]name [(columns)] AS query
// statement into its query's tokens and its column list (nil without one). A statement that
// starts with SELECT, WITH or VALUES is a query without a header.
func sqliteViewBody(toks []sqliteToken) ([]sqliteToken, []string, error) {
	if len(toks) == 0 {
		return nil, nil, problemf("the definition is empty")
	}
	if t := toks[0]; t.kind == tokKeyword && (t.text == "SELECT" || t.text == "WITH" || t.text == "VALUES") {
		return toks, nil, nil
	}
	h := &header{toks: toks}
	h.expect("CREATE")
	if !h.accept("TEMP") {
		h.accept("TEMPORARY")
	}
	h.expect("VIEW")
	if h.accept("IF") {
		h.expect("NOT")
		h.expect("EXISTS")
	}
	h.name()
	if h.acceptOp(".") {
		h.name()
	}
	var names []string
	if h.acceptOp("(") {
		names = append(names, h.name())
		for h.acceptOp(",") {
			names = append(names, h.name())
		}
		h.expectOp(")")
	}
	h.expect("AS")
	if h.bad {
		return nil, nil, problemf("the definition is not a CREATE VIEW statement")
	}
	return toks[h.at:], names, nil
}

// header reads the tokens of a CREATE VIEW statement's header; bad records the first mismatch.
type header struct {
	toks []sqliteToken
	at   int
	bad  bool
}

func (h *header) peek() (sqliteToken, bool) {
	if h.bad || h.at >= len(h.toks) {
		return sqliteToken{}, false
	}
	return h.toks[h.at], true
}

func (h *header) accept(keyword string) bool {
	if t, ok := h.peek(); ok && t.is(tokKeyword, keyword) {
		h.at++
		return true
	}
	return false
}

func (h *header) acceptOp(op string) bool {
	if t, ok := h.peek(); ok && t.is(tokOp, op) {
		h.at++
		return true
	}
	return false
}

func (h *header) expect(keyword string) {
	if !h.accept(keyword) {
		h.bad = true
	}
}

func (h *header) expectOp(op string) {
	if !h.acceptOp(op) {
		h.bad = true
	}
}

// name reads a name: an identifier, quoted or not, a string (which SQLite takes as a name here),
// or a keyword SQLite lets stand for a name.
func (h *header) name() string {
	t, ok := h.peek()
	if !ok {
		h.bad = true
		return ""
	}
	switch t.kind {
	case tokWord, tokQuoted, tokString:
		h.at++
		return t.text
	case tokKeyword:
		if t.text != "AS" {
			h.at++
			return t.raw
		}
	}
	h.bad = true
	return ""
}

// sqliteTokens splits s into tokens by SQLite's rules, dropping spaces and comments, within the
// limits on tokens and nesting.
func sqliteTokens(s string) ([]sqliteToken, error) {
	var out []sqliteToken
	depth := 0
	for i := 0; i < len(s); {
		t, next, err := sqliteToken1(s, i)
		if err != nil {
			return nil, err
		}
		i = next
		if t == nil {
			continue
		}
		if len(out) >= MaxTokens {
			return nil, problemf("the definition has more than %d tokens", MaxTokens)
		}
		if t.kind == tokOp {
			switch t.text {
			case "(":
				if depth++; depth > MaxNesting {
					return nil, problemf("the definition nests parentheses deeper than %d", MaxNesting)
				}
			case ")":
				depth--
			}
		}
		out = append(out, *t)
	}
	return out, nil
}

// sqliteToken1 reads the token at s[i:], returning it (nil for space and comments) and where the
// next one starts.
func sqliteToken1(s string, i int) (*sqliteToken, int, error) {
	c := s[i]
	switch {
	case c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r':
		return nil, i + 1, nil
	case strings.HasPrefix(s[i:], "--"):
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			return nil, i + j + 1, nil
		}
		return nil, len(s), nil
	case strings.HasPrefix(s[i:], "/*"):
		if j := strings.Index(s[i+2:], "*/"); j >= 0 {
			return nil, i + 2 + j + 2, nil
		}
		return nil, len(s), nil
	case c == '\'':
		v, next, ok := quoted(s, i, '\'')
		if !ok {
			return nil, 0, problemf("the definition has an unterminated string")
		}
		return &sqliteToken{kind: tokString, text: v, raw: s[i:next]}, next, nil
	case c == '"' || c == '`':
		v, next, ok := quoted(s, i, c)
		if !ok {
			return nil, 0, problemf("the definition has an unterminated quoted name")
		}
		return &sqliteToken{kind: tokQuoted, text: v, raw: s[i:next]}, next, nil
	case c == '[':
		j := strings.IndexByte(s[i:], ']')
		if j < 0 {
			return nil, 0, problemf("the definition has an unterminated quoted name")
		}
		return &sqliteToken{kind: tokQuoted, text: s[i+1 : i+j], raw: s[i : i+j+1]}, i + j + 1, nil
	case (c == 'x' || c == 'X') && i+1 < len(s) && s[i+1] == '\'':
		return blob(s, i)
	case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
		return number(s, i)
	case isIdentStart(c):
		j := i + 1
		for j < len(s) && isIdentChar(s[j]) {
			j++
		}
		word := s[i:j]
		if up := strings.ToUpper(word); sqliteKeywords[up] {
			return &sqliteToken{kind: tokKeyword, text: up, raw: word}, j, nil
		}
		return &sqliteToken{kind: tokWord, text: word, raw: word}, j, nil
	case c == '?' || c == ':' || c == '@' || c == '$' || c == '#':
		return nil, 0, problemf("the definition has a parameter, which a view cannot have")
	}
	for _, op := range []string{"->>", "==", "!=", "<>", "<=", ">=", "<<", ">>", "||", "->"} {
		if strings.HasPrefix(s[i:], op) {
			return &sqliteToken{kind: tokOp, text: op, raw: op}, i + len(op), nil
		}
	}
	if strings.IndexByte("(),;+-*/%&|~<>=.", c) >= 0 {
		return &sqliteToken{kind: tokOp, text: s[i : i+1], raw: s[i : i+1]}, i + 1, nil
	}
	return nil, 0, problemf("the definition has a character SQLite does not accept (at byte %d)", i)
}

// quoted reads the quoted text at s[i] (quote q, doubled inside to stand for itself).
func quoted(s string, i int, q byte) (value string, next int, ok bool) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			b.WriteByte(s[j])
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			b.WriteByte(q)
			j++
			continue
		}
		return b.String(), j + 1, true
	}
	return "", 0, false
}

// blob reads a blob literal x'hex' at s[i].
func blob(s string, i int) (*sqliteToken, int, error) {
	j := i + 2
	for j < len(s) && isHexDigit(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '\'' || (j-i-2)%2 != 0 {
		return nil, 0, problemf("the definition has a malformed blob literal")
	}
	return &sqliteToken{kind: tokBlob, text: s[i : j+1], raw: s[i : j+1]}, j + 1, nil
}

// number reads a numeric literal at s[i]: hexadecimal (0x...) or decimal with an optional
// fraction and exponent, with SQLite's '_' digit separators. A name character right after it
// makes it malformed, as in SQLite.
func number(s string, i int) (*sqliteToken, int, error) {
	j := i
	digits := func(ok func(byte) bool) {
		for j < len(s) && (ok(s[j]) || (s[j] == '_' && j+1 < len(s) && ok(s[j+1]) && j > i)) {
			j++
		}
	}
	if s[j] == '0' && j+2 < len(s) && (s[j+1] == 'x' || s[j+1] == 'X') && isHexDigit(s[j+2]) {
		j += 2
		digits(isHexDigit)
	} else {
		digits(isDigit)
		if j < len(s) && s[j] == '.' {
			j++
			digits(isDigit)
		}
		if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			if k < len(s) && isDigit(s[k]) {
				j = k
				digits(isDigit)
			}
		}
	}
	if j < len(s) && isIdentChar(s[j]) {
		return nil, 0, problemf("the definition has a malformed number")
	}
	raw := s[i:j]
	return &sqliteToken{kind: tokNumber, text: strings.ReplaceAll(raw, "_", ""), raw: raw}, j, nil
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isHexDigit(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') }
func isIdentStart(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_' || c >= 0x80
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// mysqlSpelling writes a SQLite query's tokens in MySQL's spelling, keeping what each token
// means: names backquoted (a bare word followed by "(" is a function name and stays bare; TRUE
// and FALSE, which SQLite reads as 1 and 0 where no column has the name, stay literals), strings
// re-escaped, keywords and operators whose lineage is the same renamed, and a CAST's type
// replaced by CHAR. A ";" may only end the text.
func mysqlSpelling(toks []sqliteToken) (string, error) {
	castTypes := castTypeSpans(toks)
	unnamed := unnamedDerivedTables(toks)
	var b strings.Builder
	write := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	for i := 0; i < len(toks); i++ {
		if end, ok := castTypes[i]; ok {
			write("CHAR")
			i = end - 1
			continue
		}
		t := toks[i]
		next := sqliteToken{}
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		if (t.kind == tokWord || t.kind == tokQuoted) && strings.EqualFold(t.text, "dual") {
			return "", problemf("a name spelled dual is not supported")
		}
		switch t.kind {
		case tokWord:
			switch up := strings.ToUpper(t.text); {
			case up == "TRUE" || up == "FALSE":
				write(up)
			case next.is(tokOp, "("):
				write(t.text)
			default:
				write(backquote(t.text))
			}
		case tokQuoted:
			write(backquote(t.text))
		case tokString:
			write("'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(t.text) + "'")
		case tokBlob, tokNumber:
			write(t.text)
		case tokKeyword:
			skip := keywordSpelling(toks, i, write)
			if skip < 0 {
				return "", problemf("%s JOIN is not supported", toks[i].text)
			}
			i += skip - 1
		case tokOp:
			switch t.text {
			case ";":
				if i != len(toks)-1 {
					return "", problemf("the definition holds more than one statement")
				}
			case "==":
				write("=")
			default:
				write(t.text)
			}
			if n, ok := unnamed[i]; ok {
				write(backquote(fmt.Sprintf("derived table %d", n)))
			}
		}
	}
	return b.String(), nil
}

// unnamedDerivedTables finds the derived tables without an alias, which SQLite allows and MySQL
// does not: it maps the index of each one's closing parenthesis to its ordinal.
func unnamedDerivedTables(toks []sqliteToken) map[int]int {
	out := map[int]int{}
	// inFrom[d] reports whether the tokens at parenthesis depth d are in a FROM clause.
	inFrom := []bool{false}
	for i, t := range toks {
		top := len(inFrom) - 1
		switch {
		case t.is(tokOp, "("):
			prev := sqliteToken{}
			if i > 0 {
				prev = toks[i-1]
			}
			itemStart := prev.is(tokKeyword, "FROM") || prev.is(tokKeyword, "JOIN") || (inFrom[top] && prev.is(tokOp, ","))
			if itemStart && i+1 < len(toks) && toks[i+1].kind == tokKeyword && (toks[i+1].text == "SELECT" || toks[i+1].text == "WITH" || toks[i+1].text == "VALUES") {
				if end := matchingParen(toks, i); end > 0 && !aliasFollows(toks, end) {
					out[end] = len(out) + 1
				}
			}
			inFrom = append(inFrom, false)
		case t.is(tokOp, ")"):
			if top > 0 {
				inFrom = inFrom[:top]
			}
		case t.kind == tokKeyword:
			switch t.text {
			case "FROM":
				inFrom[top] = true
			case "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW", "UNION", "INTERSECT", "EXCEPT", "SELECT":
				inFrom[top] = false
			}
		}
	}
	return out
}

// matchingParen returns the index of the parenthesis that closes toks[open], or -1.
func matchingParen(toks []sqliteToken, open int) int {
	depth := 0
	for j := open; j < len(toks); j++ {
		switch {
		case toks[j].is(tokOp, "("):
			depth++
		case toks[j].is(tokOp, ")"):
			if depth--; depth == 0 {
				return j
			}
		}
	}
	return -1
}

// aliasFollows reports whether an alias follows toks[end].
func aliasFollows(toks []sqliteToken, end int) bool {
	if end+1 >= len(toks) {
		return false
	}
	n := toks[end+1]
	return n.is(tokKeyword, "AS") || n.kind == tokWord || n.kind == tokQuoted || n.kind == tokString
}

// keywordSpelling writes the keyword toks[i] in MySQL's spelling and returns how many tokens it
// took: INTERSECT and EXCEPT become UNION; GLOB and MATCH, LIKE; ISNULL and NOTNULL, IS [NOT]
// NULL; a CTE's [NOT] MATERIALIZED hint is dropped. It returns -1 for FULL, which MySQL would
// read as an alias (t FULL JOIN u would silently become an inner join).
func keywordSpelling(toks []sqliteToken, i int, write func(string)) int {
	t := toks[i]
	prevAS := i > 0 && toks[i-1].is(tokKeyword, "AS")
	switch t.text {
	case "INTERSECT", "EXCEPT":
		write("UNION")
	case "FULL":
		return -1
	case "GLOB", "MATCH":
		write("LIKE")
	case "ISNULL":
		write("IS NULL")
	case "NOTNULL":
		write("IS NOT NULL")
	case "MATERIALIZED":
		if !prevAS {
			write(t.text)
		}
	case "NOT":
		if prevAS && i+1 < len(toks) && toks[i+1].is(tokKeyword, "MATERIALIZED") {
			return 2
		}
		write(t.text)
	default:
		write(t.text)
	}
	return 1
}

// castTypeSpans finds the type of every CAST(expr AS type): it maps the index of the type's
// first token to the index of the CAST's closing parenthesis.
func castTypeSpans(toks []sqliteToken) map[int]int {
	out := map[int]int{}
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i].is(tokKeyword, "CAST") || !toks[i+1].is(tokOp, "(") {
			continue
		}
		depth, as := 0, -1
		for j := i + 1; j < len(toks); j++ {
			switch {
			case toks[j].is(tokOp, "("):
				depth++
			case toks[j].is(tokOp, ")"):
				depth--
			case depth == 1 && as < 0 && toks[j].is(tokKeyword, "AS"):
				as = j
			}
			if depth == 0 {
				if as >= 0 && as+1 < j {
					out[as+1] = j
				}
				break
			}
		}
	}
	return out
}

// backquote quotes a name for MySQL.
func backquote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
