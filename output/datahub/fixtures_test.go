package datahub

import (
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
)

func i64(n int64) *int64 { return &n }

// postgresCatalog is a PostgreSQL run: two schemas (one with an owner withheld and no comment),
// tables, a view with lineage (a copied column, a computed one, a constant), a materialized
// view whose definition could not be analysed, a partitioned table and a partition, a foreign
// table, a table whose name has URN-reserved characters, and a foreign key from one schema to
// the other.
func postgresCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Connector: "postgres",
		Source:    "prod-pg",
		Databases: []connectors.Database{{Source: "prod-pg", Name: "shop", Owner: "dba", Comment: "The shop's database"}},
		Schemas: []connectors.Schema{
			{Database: "shop", Name: "public", Owner: "dba", Comment: "standard public schema"},
			{Database: "shop", Name: "sales", OwnerIsLoginRole: true},
		},
		Tables: []connectors.Table{
			{Database: "shop", Schema: "public", Name: "customer_names", Type: connectors.TableTypeView,
				OwnerIsLoginRole: true, Definition: " SELECT customers.id,\n    upper(customers.name) AS name, 1 AS one\n   FROM customers\n  WHERE customers.id > 0 AND customers.name <> ''::text;"},
			{Database: "shop", Schema: "public", Name: "customers", Type: connectors.TableTypeTable, Owner: "alice",
				Comment: "People who buy <things> & more", RowCount: i64(10), SizeBytes: i64(8192)},
			{Database: "shop", Schema: "public", Name: "events", Type: connectors.TableTypePartitioned, Owner: "alice",
				PartitionKey: "RANGE (at)"},
			{Database: "shop", Schema: "public", Name: "events_2024", Type: connectors.TableTypePartition, Owner: "alice",
				ParentSchema: "public", ParentTable: "events", PartitionBound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"},
			{Database: "shop", Schema: "public", Name: "odd,name(1)", Type: connectors.TableTypeTable},
			{Database: "shop", Schema: "public", Name: "remote_rates", Type: connectors.TableTypeForeign, Owner: "alice"},
			{Database: "shop", Schema: "sales", Name: "order_totals", Type: connectors.TableTypeMaterializedView,
				Owner: "bob", Definition: "SELECT customer_id, sum(amount) AS total FROM sales.orders GROUP BY 1"},
			{Database: "shop", Schema: "sales", Name: "orders", Type: connectors.TableTypeTable, Owner: "bob"},
		},
		Columns: []connectors.Column{
			{Schema: "public", Table: "customer_names", Name: "id", Position: 1, DataType: "integer", Nullable: true},
			{Schema: "public", Table: "customer_names", Name: "name", Position: 2, DataType: "text", Nullable: true},
			{Schema: "public", Table: "customer_names", Name: "one", Position: 3, DataType: "integer", Nullable: true},
			{Schema: "public", Table: "customers", Name: "id", Position: 1, DataType: "integer", PrimaryKey: true, Identity: "always"},
			{Schema: "public", Table: "customers", Name: "name", Position: 2, DataType: "text", Comment: "full name"},
			{Schema: "public", Table: "customers", Name: "email", Position: 3, DataType: "character varying(255)", Nullable: true},
			{Schema: "public", Table: "customers", Name: "balance", Position: 4, DataType: "numeric(10,2)", Nullable: true},
			{Schema: "public", Table: "customers", Name: "active", Position: 5, DataType: "boolean"},
			{Schema: "public", Table: "customers", Name: "joined", Position: 6, DataType: "date", Nullable: true},
			{Schema: "public", Table: "customers", Name: "seen_at", Position: 7, DataType: "timestamp(3) with time zone", Nullable: true},
			{Schema: "public", Table: "customers", Name: "prefs", Position: 8, DataType: "jsonb", Nullable: true},
			{Schema: "public", Table: "customers", Name: "tags", Position: 9, DataType: "text[]", Nullable: true},
			{Schema: "public", Table: "customers", Name: "photo", Position: 10, DataType: "bytea", Nullable: true},
			{Schema: "public", Table: "customers", Name: "uid", Position: 11, DataType: "uuid", Nullable: true},
			{Schema: "public", Table: "customers", Name: "attrs", Position: 12, DataType: "hstore", Nullable: true},
			{Schema: "public", Table: "customers", Name: "home", Position: 13, DataType: "point", Nullable: true},
			{Schema: "public", Table: "customers", Name: "mood", Position: 14, DataType: "mood", TypeSchema: "public", TypeName: "mood", Nullable: true},
			{Schema: "public", Table: "customers", Name: "wait", Position: 15, DataType: "interval day to second", Nullable: true},
			{Schema: "public", Table: "events", Name: "at", Position: 1, DataType: "timestamp without time zone"},
			{Schema: "public", Table: "events_2024", Name: "at", Position: 1, DataType: "timestamp without time zone"},
			{Schema: "public", Table: "odd,name(1)", Name: "a,b (c)", Position: 1, DataType: "text", Nullable: true},
			{Schema: "public", Table: "remote_rates", Name: "rate", Position: 1, DataType: "double precision", Nullable: true},
			{Schema: "sales", Table: "order_totals", Name: "customer_id", Position: 1, DataType: "integer", Nullable: true},
			{Schema: "sales", Table: "order_totals", Name: "total", Position: 2, DataType: "numeric", Nullable: true},
			{Schema: "sales", Table: "orders", Name: "id", Position: 1, DataType: "bigint", PrimaryKey: true},
			{Schema: "sales", Table: "orders", Name: "customer_id", Position: 2, DataType: "integer"},
			{Schema: "sales", Table: "orders", Name: "amount", Position: 3, DataType: "money", Nullable: true},
		},
		Keys: []connectors.Key{
			{Schema: "public", Table: "customers", Name: "customers_pkey", Type: connectors.KeyPrimary, Columns: []string{"id"}},
			{Schema: "public", Table: "customers", Name: "customers_email_key", Type: connectors.KeyUnique, Columns: []string{"email"}},
			{Schema: "sales", Table: "orders", Name: "orders_pkey", Type: connectors.KeyPrimary, Columns: []string{"id"}},
			{Schema: "sales", Table: "orders", Name: "orders_customer_fk", Type: connectors.KeyForeign, Columns: []string{"customer_id"},
				RefSchema: "public", RefTable: "customers", RefColumns: []string{"id"}, OnDelete: "cascade"},
		},
		Lineage: []connectors.Lineage{
			{Schema: "public", View: "customer_names", Method: "parser",
				Upstream: []connectors.RelationRef{{Schema: "public", Name: "customers"}},
				Columns: []connectors.ColumnLineage{
					{Column: "id", Sources: []connectors.ColumnRef{{Schema: "public", Table: "customers", Column: "id"}}, Transformation: connectors.LineageDirect},
					{Column: "name", Sources: []connectors.ColumnRef{{Schema: "public", Table: "customers", Column: "name"}}, Transformation: connectors.LineageExpression},
					{Column: "one", Transformation: connectors.LineageExpression},
				}},
			{Schema: "sales", View: "order_totals", Method: "parser", Problem: "the definition uses a construct the parser does not support"},
		},
	}
}

// mysqlCatalog is a MySQL run of two schemas (MySQL databases), with a view reading across
// them, MySQL's type spellings, and a connection database given as a secret (withheld).
func mysqlCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Connector: "mysql",
		Source:    "crm-mysql",
		Databases: []connectors.Database{{Source: "crm-mysql", Name: "", Encoding: "utf8mb4"}},
		Schemas: []connectors.Schema{
			{Name: "appdb", Comment: "the application"},
			{Name: "reporting"},
		},
		Tables: []connectors.Table{
			{Schema: "appdb", Name: "users", Type: connectors.TableTypeTable, Engine: "InnoDB", RowCount: i64(3), Comment: "app users"},
			{Schema: "appdb", Name: "sessions", Type: connectors.TableTypeTable, Engine: "InnoDB"},
			{Schema: "reporting", Name: "active_users", Type: connectors.TableTypeView, Definition: "select `u`.`id` AS `id` from `appdb`.`users` `u`"},
		},
		Columns: []connectors.Column{
			{Schema: "appdb", Table: "users", Name: "id", Position: 1, DataType: "int(10) unsigned", PrimaryKey: true, Identity: "auto_increment"},
			{Schema: "appdb", Table: "users", Name: "flag", Position: 2, DataType: "tinyint(1)"},
			{Schema: "appdb", Table: "users", Name: "kind", Position: 3, DataType: "enum('a','b')"},
			{Schema: "appdb", Table: "users", Name: "perms", Position: 4, DataType: "set('r','w')", Nullable: true},
			{Schema: "appdb", Table: "users", Name: "created", Position: 5, DataType: "datetime(6)"},
			{Schema: "appdb", Table: "users", Name: "doc", Position: 6, DataType: "json", Nullable: true},
			{Schema: "appdb", Table: "users", Name: "avatar", Position: 7, DataType: "mediumblob", Nullable: true},
			{Schema: "appdb", Table: "users", Name: "spot", Position: 8, DataType: "point", Nullable: true},
			{Schema: "appdb", Table: "sessions", Name: "user_id", Position: 1, DataType: "int(10) unsigned"},
			{Schema: "reporting", Table: "active_users", Name: "id", Position: 1, DataType: "int(10) unsigned"},
		},
		Keys: []connectors.Key{
			{Schema: "appdb", Table: "users", Name: "PRIMARY", Type: connectors.KeyPrimary, Columns: []string{"id"}},
			{Schema: "appdb", Table: "sessions", Name: "sessions_ibfk_1", Type: connectors.KeyForeign, Columns: []string{"user_id"},
				RefSchema: "appdb", RefTable: "users", RefColumns: []string{"id"}},
		},
		Lineage: []connectors.Lineage{
			{Schema: "reporting", View: "active_users", Method: "parser",
				Upstream: []connectors.RelationRef{{Schema: "appdb", Name: "users"}},
				Columns: []connectors.ColumnLineage{
					{Column: "id", Sources: []connectors.ColumnRef{{Schema: "appdb", Table: "users", Column: "id"}}, Transformation: connectors.LineageDirect},
				}},
		},
	}
}

// sqliteCatalog is a SQLite run of the main schema and an attached one, with declared types
// that only SQLite's affinity rules make sense of and a foreign key whose referenced column was
// not resolved.
func sqliteCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Connector: "sqlite",
		Source:    "local-file",
		Databases: []connectors.Database{{Source: "local-file", Name: "app.db", Encoding: "UTF-8"}},
		Schemas:   []connectors.Schema{{Database: "app.db", Name: "aux"}, {Database: "app.db", Name: "main"}},
		Tables: []connectors.Table{
			{Database: "app.db", Schema: "main", Name: "items", Type: connectors.TableTypeTable, RowCount: i64(2)},
			{Database: "app.db", Schema: "main", Name: "item_view", Type: connectors.TableTypeView, Definition: "CREATE VIEW item_view AS SELECT id FROM items"},
			{Database: "app.db", Schema: "main", Name: "search", Type: connectors.TableTypeVirtual},
			{Database: "app.db", Schema: "aux", Name: "notes", Type: connectors.TableTypeTable},
		},
		Columns: []connectors.Column{
			{Schema: "main", Table: "items", Name: "id", Position: 1, DataType: "INTEGER", PrimaryKey: true},
			{Schema: "main", Table: "items", Name: "label", Position: 2, DataType: "VARCHAR(40)", Nullable: true},
			{Schema: "main", Table: "items", Name: "price", Position: 3, DataType: "DECIMAL(10,5)", Nullable: true},
			{Schema: "main", Table: "items", Name: "ok", Position: 4, DataType: "BOOLEAN", Nullable: true},
			{Schema: "main", Table: "items", Name: "raw", Position: 5, DataType: "", Nullable: true},
			{Schema: "main", Table: "items", Name: "img", Position: 6, DataType: "BLOB", Nullable: true},
			{Schema: "main", Table: "items", Name: "at", Position: 7, DataType: "DATETIME", Nullable: true},
			{Schema: "main", Table: "item_view", Name: "id", Position: 1, DataType: "INTEGER", Nullable: true},
			{Schema: "main", Table: "search", Name: "body", Position: 1, DataType: "", Nullable: true},
			{Schema: "aux", Table: "notes", Name: "item_id", Position: 1, DataType: "INT", Nullable: true},
		},
		Keys: []connectors.Key{
			{Schema: "main", Table: "items", Name: "pk_items", Type: connectors.KeyPrimary, Columns: []string{"id"}},
			{Schema: "aux", Table: "notes", Name: "fk_notes_1", Type: connectors.KeyForeign, Columns: []string{"item_id"},
				RefSchema: "aux", RefTable: "items"},
		},
		Lineage: []connectors.Lineage{
			{Schema: "main", View: "item_view", Method: "parser",
				Upstream: []connectors.RelationRef{{Schema: "main", Name: "items"}},
				Columns: []connectors.ColumnLineage{
					{Column: "id", Sources: []connectors.ColumnRef{{Schema: "main", Table: "items", Column: "id"}}, Transformation: connectors.LineageDirect},
				}},
		},
	}
}
