package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

var _ connectors.Fingerprinter = (*Source)(nil)

// Fingerprints implements connectors.Fingerprinter. Everything Extract writes about a schema is
// derived from its sqlite_schema rows (every CREATE statement as stored: pragma_table_info and
// the other pragmas parse them), its sqlite_stat1 rows (RowCount) and, for the first schema, the
// database's encoding and size (the Database entity); with SQLite's version, which decides how
// the pragmas read the statements. A schema's digest is SHA-256 over those rows; reading them
// costs one pass over sqlite_schema, whatever the size of the tables.
func (s *Source) Fingerprints(ctx context.Context, schemas []string, filters connectors.Filters, _ []byte) (map[string]string, []byte, error) {
	fps, err := s.fingerprints(ctx, schemas, filters)
	return fps, nil, err
}

func (s *Source) fingerprints(ctx context.Context, schemas []string, filters connectors.Filters) (map[string]string, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer func() { _ = tx.Rollback() }()
	known, err := s.schemaNames(ctx, tx)
	if err != nil {
		return nil, err
	}
	var version string
	if err := tx.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return nil, s.classify(ctx, err)
	}
	first := firstSchema(known, filters)
	out := make(map[string]string, len(schemas))
	for _, schema := range schemas {
		if !slices.Contains(known, schema) {
			return nil, &secrets.Error{Kind: secrets.InvalidInput,
				Msg: fmt.Sprintf("sqlite: the database has no schema %q; its schemas are %s", schema, strings.Join(quoteAll(known), ", "))}
		}
		h := sha256.New()
		field(h, "sqlite", version, schema)
		if schema == first {
			var encoding sql.NullString
			var size sql.NullInt64
			if err := tx.QueryRowContext(ctx, databaseQuery).Scan(&encoding, &size); err != nil {
				return nil, s.classify(ctx, err)
			}
			field(h, "database", encoding.String, fmt.Sprint(size.Int64, size.Valid))
		}
		q := quoteIdent(schema)
		if err := hashRows(ctx, tx, h, "SELECT type, name, tbl_name, coalesce(sql, '') FROM "+q+".sqlite_schema ORDER BY type, name"); err != nil {
			return nil, s.classify(ctx, err)
		}
		var stat1 int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+q+".sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'").Scan(&stat1); err != nil {
			return nil, s.classify(ctx, err)
		}
		if stat1 > 0 {
			if err := hashRows(ctx, tx, h, "SELECT tbl, coalesce(idx, ''), coalesce(stat, '') FROM "+q+".sqlite_stat1 ORDER BY 1, 2, 3"); err != nil {
				return nil, s.classify(ctx, err)
			}
		}
		out[schema] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// hashRows feeds every row of a query of text columns to h.
func hashRows(ctx context.Context, tx *sql.Tx, h hash.Hash, query string) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		field(h, vals...)
	}
	return rows.Err()
}

// field writes values to h, each with its length, so that no two lists of values hash alike.
func field(h hash.Hash, values ...string) {
	for _, v := range values {
		fmt.Fprintf(h, "%d:", len(v))
		h.Write([]byte(v))
	}
	h.Write([]byte{'\n'})
}
