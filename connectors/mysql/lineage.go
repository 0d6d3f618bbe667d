package mysql

import (
	"context"
	"database/sql"
	"slices"

	"github.com/secure-agent/secure-agent/connectors/lineage"
)

// viewDefinition is a view of the chunk, kept from the tables step for its lineage.
type viewDefinition struct {
	key        tableKey
	definition string
}

// maxNamesPerColumnsQuery bounds the TABLE_NAME IN list of one relationColumnsQuery.
const maxNamesPerColumnsQuery = 500

// relationColumnsQuery lists the columns of the named relations (tables and views) of the named
// schemas, in order. MariaDB opens only the tables an IN list on TABLE_NAME names; it compares
// those names as file names, so the rows are matched to the wanted relations exactly in Go.
func relationColumnsQuery(nSchemas, nNames int) string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN ` + placeholders(nSchemas) + ` AND TABLE_NAME IN ` + placeholders(nNames) + `
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME") + `, ORDINAL_POSITION`
}

// lineage writes the lineage of the chunk's views (those the table filters include), by parsing
// their definitions (package lineage). The columns of every relation the definitions name are
// read first, with one query per 500 names: lineage is never guessed, so a relation the catalog
// does not list (dropped, or not visible to the login user) makes the view's lineage a Problem.
func (x *chunk) lineage(ctx context.Context) error {
	if len(x.views) == 0 {
		return nil
	}
	want := map[tableKey]bool{}
	for _, v := range x.views {
		for _, r := range lineage.References(lineage.MySQL, v.key.schema, v.key.table, v.definition) {
			want[tableKey{r.Schema, r.Name}] = true
		}
	}
	rels, err := x.relationColumns(ctx, want)
	if err != nil {
		return err
	}
	cat := lineage.NewCatalog(lineage.MySQL, rels)
	for i, v := range x.views {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		l := lineage.Analyze(lineage.MySQL, v.key.schema, v.key.table, v.definition, cat)
		l.Database = x.s.dbName
		x.views[i] = viewDefinition{} // let the collector have it
		if err := x.w.Write(l); err != nil {
			return err
		}
	}
	return nil
}

// relationColumns reads the columns of the wanted relations.
func (x *chunk) relationColumns(ctx context.Context, want map[tableKey]bool) ([]lineage.Relation, error) {
	var schemas, names []string
	for k := range want {
		if !slices.Contains(schemas, k.schema) {
			schemas = append(schemas, k.schema)
		}
		if !slices.Contains(names, k.table) {
			names = append(names, k.table)
		}
	}
	slices.Sort(schemas)
	slices.Sort(names)
	var rels []lineage.Relation
	var schema, table, column sql.NullString
	for len(names) > 0 {
		batch := names[:min(len(names), maxNamesPerColumnsQuery)]
		names = names[len(batch):]
		args := make([]any, 0, len(schemas)+len(batch))
		for _, s := range schemas {
			args = append(args, s)
		}
		for _, n := range batch {
			args = append(args, n)
		}
		err := x.s.stream(ctx, relationColumnsQuery(len(schemas), len(batch)), args, []any{&schema, &table, &column}, func() error {
			if !want[tableKey{schema.String, table.String}] {
				return nil
			}
			if n := len(rels); n == 0 || rels[n-1].Schema != schema.String || rels[n-1].Name != table.String {
				rels = append(rels, lineage.Relation{Schema: schema.String, Name: table.String})
			}
			last := &rels[len(rels)-1]
			last.Columns = append(last.Columns, column.String)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return rels, nil
}
