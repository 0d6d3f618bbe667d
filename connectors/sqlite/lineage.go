package sqlite

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors/lineage"
)

// viewDefinition is a view of the extraction, kept from the tables step for its lineage.
type viewDefinition struct {
	schema, name, sql string
}

// relationColumnsQuery lists the columns of the relations of one schema whose names match
// (ASCII case-insensitively, as SQLite compares names) one of n parameters ?2..?n+1; ?1 is the
// schema's name.
func relationColumnsQuery(schema string, n int) string {
	params := make([]string, n)
	for i := range params {
		params[i] = "?" + strconv.Itoa(i+2)
	}
	return `SELECT s.name, p.name FROM ` + quoteIdent(schema) + `.sqlite_schema AS s
JOIN pragma_table_info(s.name, ?1) AS p
WHERE ` + userObject + ` AND s.name COLLATE NOCASE IN (` + strings.Join(params, ", ") + `)
ORDER BY s.name, p.cid`
}

// lineage writes the lineage of the views the tables step wrote, by parsing their CREATE VIEW
// text (package lineage), after reading the columns of every relation they name with one query
// per schema. A relation that cannot be described (a view over a dropped table) is left out of
// that catalog: the lineage of a view that reads it is a Problem, never a guess.
func (x *extraction) lineage(ctx context.Context) error {
	if len(x.views) == 0 {
		return nil
	}
	want := map[string][]string{} // schema -> names
	for _, v := range x.views {
		for _, r := range lineage.References(lineage.SQLite, v.schema, v.name, v.sql) {
			if !slices.Contains(want[r.Schema], r.Name) {
				want[r.Schema] = append(want[r.Schema], r.Name)
			}
		}
	}
	var rels []lineage.Relation
	for _, schema := range x.schemas {
		names := want[schema]
		if len(names) == 0 {
			continue
		}
		got, err := x.relationColumns(ctx, schema, names)
		if err != nil {
			return err
		}
		rels = append(rels, got...)
	}
	cat := lineage.NewCatalog(lineage.SQLite, rels)
	for _, v := range x.views {
		l := lineage.Analyze(lineage.SQLite, v.schema, v.name, v.sql, cat)
		l.Database = x.database
		if err := x.emit(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// relationColumns reads the columns of the named relations of schema. Should the query fail
// because one of them cannot be described, each is read alone and the broken ones left out.
func (x *extraction) relationColumns(ctx context.Context, schema string, names []string) ([]lineage.Relation, error) {
	read := func(names []string) ([]lineage.Relation, error) {
		var rels []lineage.Relation
		var rel, col string
		args := append([]any{schema}, anySlice(names)...)
		_, err := each(ctx, x.tx, relationColumnsQuery(schema, len(names)), args, []any{&rel, &col}, func() error {
			if n := len(rels); n == 0 || rels[n-1].Name != rel {
				rels = append(rels, lineage.Relation{Schema: schema, Name: rel})
			}
			rels[len(rels)-1].Columns = append(rels[len(rels)-1].Columns, col)
			return nil
		})
		return rels, err
	}
	rels, err := read(names)
	if err == nil || !undescribable(ctx, err) {
		return rels, err
	}
	rels = nil
	for _, name := range names {
		one, err := read([]string{name})
		if err != nil {
			if undescribable(ctx, err) {
				continue
			}
			return nil, err
		}
		rels = append(rels, one...)
	}
	return rels, nil
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
