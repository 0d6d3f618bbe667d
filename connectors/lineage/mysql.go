package lineage

import (
	"strings"
	"sync"

	"vitess.io/vitess/go/vt/sqlparser"
)

// mysqlServerVersion is the server version the parser accepts the syntax of.
const mysqlServerVersion = "8.0.40"

var (
	parserOnce sync.Once
	parser     *sqlparser.Parser
	parserErr  error
)

// vitessParser returns the shared parser (it keeps no state between calls).
func vitessParser() (*sqlparser.Parser, error) {
	parserOnce.Do(func() {
		parser, parserErr = sqlparser.New(sqlparser.Options{MySQLServerVersion: mysqlServerVersion})
	})
	return parser, parserErr
}

// parseMySQL parses a MySQL or MariaDB view query (VIEW_DEFINITION). Before parsing, it checks
// the limits and that the text is one query, with the parser's own tokenizer, and spells
// INTERSECT and EXCEPT as UNION, which the parser lacks and which feed columns the same way.
func parseMySQL(definition string) (parsedView, error) {
	p, err := vitessParser()
	if err != nil {
		return parsedView{}, problemf("the SQL parser is not available")
	}
	text, err := prepareMySQL(p, definition)
	if err != nil {
		return parsedView{}, err
	}
	stmt, err := parseQuery(p, text, MySQL)
	return parsedView{stmt: stmt}, err
}

// prepareMySQL scans definition with the parser's tokenizer: it must be one SELECT or WITH query
// within the limits. It returns the text with INTERSECT and EXCEPT replaced by UNION.
func prepareMySQL(p *sqlparser.Parser, definition string) (string, error) {
	tkn := p.NewStringTokenizer(definition)
	var setOps [][2]int
	depth, tokens, first, ended := 0, 0, true, false
	for {
		typ, val := tkn.Scan()
		if typ == 0 {
			break
		}
		if typ == sqlparser.COMMENT {
			continue
		}
		if tokens++; tokens > MaxTokens {
			return "", problemf("the definition has more than %d tokens", MaxTokens)
		}
		end := tkn.Pos
		switch {
		case typ == sqlparser.LEX_ERROR:
			return "", problemf("the definition does not parse as a MySQL query (at byte %d)", end)
		case ended:
			return "", problemf("the definition holds more than one statement")
		case first && typ != sqlparser.SELECT && typ != sqlparser.WITH && typ != '(':
			return "", problemf("the definition is not a SELECT query")
		case typ == sqlparser.AT_ID || typ == sqlparser.AT_AT_ID || typ == sqlparser.VALUE_ARG || typ == sqlparser.LIST_ARG || typ == sqlparser.OFFSET_ARG:
			return "", problemf("the definition reads a variable or parameter, which a view cannot")
		case typ == '(':
			if depth++; depth > MaxNesting {
				return "", problemf("the definition nests parentheses deeper than %d", MaxNesting)
			}
		case typ == ')':
			depth--
		case typ == ';':
			ended = true
		case isBareWord(definition, end, val, "except") || isBareWord(definition, end, val, "intersect"):
			if start := end - len(val); start >= 0 {
				setOps = append(setOps, [2]int{start, end})
			}
		}
		first = false
	}
	if first {
		return "", problemf("the definition is empty")
	}
	return replaceSpans(definition, setOps, "union"), nil
}

// isBareWord reports whether the token val that ends at end in s is word, unquoted.
func isBareWord(s string, end int, val, word string) bool {
	start := end - len(val)
	return start >= 0 && end <= len(s) && strings.EqualFold(s[start:end], word)
}

// replaceSpans returns s with each span (sorted, not overlapping) replaced by with.
func replaceSpans(s string, spans [][2]int, with string) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp[0]])
		b.WriteString(" " + with + " ")
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// parseQuery parses text, which must be one SELECT or set operation. A syntax error is a Problem
// that names the dialect; the parser's message, which quotes the text, is dropped.
//
// A panic of the parser (it has had some on hostile text) is a Problem too: the parser resets its
// state whatever happens, so it stays usable.
func parseQuery(p *sqlparser.Parser, text string, dialect Dialect) (q tableStatement, err error) {
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, problemf("the SQL parser failed on the definition")
		}
	}()
	stmt, err := p.Parse(text)
	if err != nil {
		if dialect == SQLite {
			return nil, problemf("the definition uses SQL the parser does not support")
		}
		return nil, problemf("the definition does not parse as a MySQL query")
	}
	q, ok := stmt.(tableStatement)
	if !ok {
		return nil, problemf("the definition is not a SELECT query")
	}
	return q, nil
}
