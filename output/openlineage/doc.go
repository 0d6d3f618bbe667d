// Package openlineage turns one run's catalog (package output/catalog) into OpenLineage
// static-metadata events: one DatasetEvent per table, view, materialized view, partitioned
// table, partition, foreign table and virtual table, written as JSON Lines (WriteJSONL).
//
// # Specification
//
// The events follow the OpenLineage specification as read at commit
// 8f02abfb7a252783b95df79f443edb13959bf52c of github.com/OpenLineage/OpenLineage (2026-08-20),
// whose spec files used here are the same as in release 1.52.0: the event schema
// OpenLineage.json 2-0-2 (DatasetEvent) and the dataset facets SchemaDatasetFacet 1-2-0,
// DocumentationDatasetFacet 1-1-0, OwnershipDatasetFacet 1-0-1, DatasetTypeDatasetFacet 1-0-1,
// ColumnLineageDatasetFacet 1-2-0 and HierarchyDatasetFacet 1-0-0 (the database hierarchy
// facet, OpenLineage pull request 3747, released in 1.45.0). Not emitted: SymlinksDatasetFacet (there is no second
// identifier to link: the one the naming table gives holds the host and port, which may be
// secrets), and LineageFacet (explicit lineage, which could carry a view's relation-level
// upstreams: not in any release at that commit). A view's upstream relations without column
// lineage are therefore not carried.
//
// # Naming
//
// Dataset names follow OpenLineage's naming conventions (website/docs/spec/naming.md; spec/Naming.md
// only points there), with one deliberate exception: the convention puts the server's host and
// port in the namespace ("postgres://{host}:{port}"), and they may come from a secret, so they
// never appear. The namespace is instead
//
//	<scheme>://<source label>
//
// with scheme "postgres", "mysql" or "sqlite" and the label (the workflow input's "source",
// never read from a secret) percent-encoded so that it is a valid RFC 3986 authority: every byte
// outside the unreserved characters (A-Z a-z 0-9 - . _ ~) is written %XX, hex in upper case,
// except the colon of a label of the form host:port, so that an operator whose host is not a
// secret can give the label the convention would ("db1.internal:5432").
// Where the convention puts the database's name, Catalog.Database is used: the literal database
// name, or the source label when the database name was a secret. Names per engine:
//
//	PostgreSQL  {database}.{schema}.{table}   as the convention says
//	MySQL       {schema}.{table}              the convention's {database}.{table}: a MySQL
//	                                          "schema" is a database
//	SQLite      {schema}.{table}              schema "main", "temp" or an attached name
//
// The naming table has no row for SQLite; the nearest ones name a database file by its path,
// which may be sensitive too, so the source label stands for the file, in the namespace, and
// the name is built as for the other engines. Names are not quoted: a dot inside a schema or
// table name makes the name ambiguous, as it does for every producer of these conventions.
//
// The hierarchy facet repeats the name's parts as levels, highest first: DATABASE, SCHEMA,
// TABLE (PostgreSQL); DATABASE, TABLE (MySQL); SCHEMA, TABLE (SQLite). The lowest level is
// TABLE for every kind of relation; the datasetType facet tells a view from a table.
//
// Nothing here logs, and nothing reads the network or the disk: events are built from the
// catalog in memory, and are the same, byte for byte, for the same catalog and Options.
package openlineage
