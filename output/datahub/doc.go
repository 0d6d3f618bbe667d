// Package datahub turns one run's catalog (package catalog) into DataHub metadata change
// proposals (MCPs), every one an UPSERT of one aspect of one entity: WriteFile writes them as the
// JSON array DataHub's "file" ingestion source reads (a recipe with source type "file" and
// config.path naming the file), and Proposal.IngestBody gives the body of GMS's
// POST /aspects?action=ingestProposal for one of them.
//
// What is emitted, following DataHub's own SQL sources (metadata-ingestion's sql_common,
// two_tier_sql_source and mcp_builder):
//
//   - Containers. PostgreSQL and SQLite: one container for the database (subTypes "Database")
//     and one per schema (subTypes "Schema", with a container aspect naming the database's).
//     MySQL is two-tier, as in DataHub's MySQL source: a MySQL schema is a database, so each
//     schema is a container of subTypes "Database" and the connection's database gets none.
//     Each has containerProperties (name, the comment as description, DataHub's key properties
//     platform, env, database and schema as customProperties), status, dataPlatformInstance,
//     subTypes, browsePathsV2 and, when the owner is known, ownership.
//   - One dataset per table, view, materialized view, partition or foreign table: container,
//     status, datasetProperties, schemaMetadata, subTypes, viewProperties (views), ownership
//     (when the owner is known), browsePathsV2, and upstreamLineage for a view whose lineage
//     was analysed (a Lineage with Problem set is skipped: nothing is guessed). Its upstreams
//     are of type VIEW; a view column with sources gets a field-level lineage whose
//     transformOperation is "COPY" (the column is a source column) or "SQL" (it is computed),
//     the prefixes DataHub's own SQL lineage writes before the expression, which the catalog
//     does not keep.
//
// Names. Dataset URNs are urn:li:dataset:(urn:li:dataPlatform:<platform>,<name>,<env>) with
// platform "postgres", "mysql" or "sqlite" and name "<database>.<schema>.<table>" for PostgreSQL
// and "<schema>.<table>" for MySQL (the schema is the MySQL database) and SQLite. Container URNs
// are urn:li:container:<guid>, the guid computed as DataHub's mcp_builder computes it (see
// containerGUID), so that they equal those DataHub's PostgreSQL and MySQL sources give the same
// database and schema names without a platform instance. The characters DataHub's UrnEncoder
// reserves (",", "(" and ")") are percent-encoded where a name goes into a URN.
//
// Security. Nothing in a proposal comes from the connection: no host, port, user name or file
// path is ever put in a URN or a property. Every name is the catalog's, already redacted. The
// database's name is always c.Database(): when the input gave the name as a secret the output
// withholds it, and the source label stands for it (in the database container, in container
// GUIDs and in PostgreSQL dataset names). An owner the connector withheld (Owner empty,
// OwnerIsLoginRole set: the login role's name may be a secret) gets no ownership aspect.
//
// Determinism. For a given catalog the proposals, their order and WriteFile's bytes are always
// the same (every time is 0 and every actor urn:li:corpuser:datahub), so that a re-run's UPSERTs
// do not make new aspect versions in DataHub.
//
// internal/specs/datahub.schema.json states the parts of DataHub's metadata model these
// proposals use as a JSON Schema; the tests validate every proposal against it.
package datahub
