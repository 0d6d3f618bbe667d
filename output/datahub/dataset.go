package datahub

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

// Sub types of datasets, as DataHub's DatasetSubTypes names them.
var datasetSubTypes = map[string]string{
	connectors.TableTypeTable:            "Table",
	connectors.TableTypeView:             "View",
	connectors.TableTypeMaterializedView: "View",
	connectors.TableTypePartitioned:      "Table",
	connectors.TableTypePartition:        "Table",
	connectors.TableTypeForeign:          "External Table",
	connectors.TableTypeVirtual:          "Table",
}

// Transform operations of fine-grained lineage: the prefixes DataHub's SQL parsing lineage
// writes ("COPY: <expression>" for a column copied as is, "SQL: <expression>" for one computed),
// without the expression, which the catalog's lineage does not keep.
const (
	transformCopy = "COPY"
	transformSQL  = "SQL"
)

// Confidence in a column's lineage: full when the engine's catalog recorded it, and for lineage
// read from a parsed definition the 0.9 DataHub gives its own SQL-parsed lineage.
const (
	confidenceCatalog = 1.0
	confidenceParser  = 0.9
)

// datasetName returns the dataset name of a relation: <database>.<schema>.<table> for
// PostgreSQL, <schema>.<table> where the schema is the database (MySQL) or the file's
// attachment name (SQLite).
func (b *builder) datasetName(schema, table string) string {
	if b.platform == "postgres" {
		return b.db + "." + schema + "." + table
	}
	return schema + "." + table
}

// dataset returns the URN of a relation.
func (b *builder) dataset(schema, table string) string {
	return datasetURN(b.platform, b.datasetName(schema, table), b.env)
}

// datasets adds the aspects of every table, view and partition, sorted by schema and name (a
// relation listed twice is proposed once), then the lineage of views the catalog has no table
// entity for.
func (b *builder) datasets() {
	tables := slices.Clone(b.c.Tables)
	slices.SortStableFunc(tables, func(x, y connectors.Table) int {
		return cmp.Or(strings.Compare(x.Schema, y.Schema), strings.Compare(x.Name, y.Name))
	})
	columns := b.c.TableColumns()
	keys := map[connectors.RelationRef][]connectors.Key{}
	for _, k := range b.c.Keys {
		ref := connectors.RelationRef{Schema: k.Schema, Name: k.Table}
		keys[ref] = append(keys[ref], k)
	}
	lineage := map[connectors.RelationRef]connectors.Lineage{}
	for _, l := range b.c.Lineage {
		ref := connectors.RelationRef{Schema: l.Schema, Name: l.View}
		if _, dup := lineage[ref]; l.Problem == "" && !dup {
			lineage[ref] = l
		}
	}
	seen := map[connectors.RelationRef]bool{}
	for _, t := range tables {
		ref := connectors.RelationRef{Schema: t.Schema, Name: t.Name}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		if t.Name == "" {
			b.fail(fmt.Errorf("datahub: the catalog has a relation without a name in schema %q", t.Schema))
			return
		}
		b.table(t, columns[ref], keys[ref])
		if l, ok := lineage[ref]; ok {
			b.lineage(l)
		}
	}
	var orphans []connectors.RelationRef
	for ref := range lineage {
		if !seen[ref] {
			orphans = append(orphans, ref)
		}
	}
	slices.SortFunc(orphans, compareRefs)
	for _, ref := range orphans {
		b.lineage(lineage[ref])
	}
}

func compareRefs(x, y connectors.RelationRef) int {
	return cmp.Or(strings.Compare(x.Schema, y.Schema), strings.Compare(x.Name, y.Name))
}

// table adds the aspects of one dataset, in the order DataHub's SQL sources emit them.
func (b *builder) table(t connectors.Table, cols []connectors.Column, keys []connectors.Key) {
	urn := b.dataset(t.Schema, t.Name)
	container := b.schemaContainer(t.Schema)
	b.add(entityDataset, urn, "container", containerAspect{Container: container})
	b.add(entityDataset, urn, "status", status{Removed: false})
	b.add(entityDataset, urn, "datasetProperties", datasetProperties{
		CustomProperties: tableProperties(t), Name: t.Name, Description: t.Comment, Tags: []string{},
	})
	b.add(entityDataset, urn, "schemaMetadata", b.schemaMetadata(t, urn, cols, keys))
	subType, ok := datasetSubTypes[t.Type]
	if !ok {
		subType = "Table"
	}
	b.add(entityDataset, urn, "subTypes", subTypes{TypeNames: []string{subType}})
	if t.Type == connectors.TableTypeView || t.Type == connectors.TableTypeMaterializedView {
		b.add(entityDataset, urn, "viewProperties", viewProperties{
			Materialized: t.Type == connectors.TableTypeMaterializedView, ViewLogic: t.Definition, ViewLanguage: "SQL",
		})
	}
	if o := ownershipOf(t.Owner); o != nil {
		b.add(entityDataset, urn, "ownership", o)
	}
	var path []browsePathEntry
	if !b.twoTier {
		db := containerURN(containerGUID(b.dbKey()))
		path = append(path, browsePathEntry{ID: db, URN: db})
	}
	path = append(path, browsePathEntry{ID: container, URN: container})
	b.add(entityDataset, urn, "browsePathsV2", browsePathsV2{Path: path})
}

// tableProperties returns a dataset's customProperties: the engine's details that have no
// field of their own in the model, as strings, the empty ones left out.
func tableProperties(t connectors.Table) map[string]string {
	p := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("type", t.Type)
	set("engine", t.Engine)
	if t.RowCount != nil {
		set("rowCount", strconv.FormatInt(*t.RowCount, 10))
	}
	if t.SizeBytes != nil {
		set("sizeBytes", strconv.FormatInt(*t.SizeBytes, 10))
	}
	if t.ParentTable != "" {
		set("parent", t.ParentSchema+"."+t.ParentTable)
	}
	set("partitionBound", t.PartitionBound)
	set("partitionKey", t.PartitionKey)
	set("extension", t.Extension)
	return p
}

// schemaMetadata returns a dataset's schema: its columns by position, its primary key and its
// foreign keys by name.
func (b *builder) schemaMetadata(t connectors.Table, urn string, cols []connectors.Column, keys []connectors.Key) schemaMetadata {
	cols = slices.Clone(cols)
	slices.SortStableFunc(cols, func(x, y connectors.Column) int { return cmp.Compare(x.Position, y.Position) })
	fields := make([]schemaField, 0, len(cols))
	var primary []string
	for _, c := range cols {
		fields = append(fields, schemaField{
			FieldPath:      c.Name,
			Nullable:       c.Nullable,
			Description:    c.Comment,
			Type:           fieldType(b.c.Connector, c.DataType),
			NativeDataType: c.DataType,
			IsPartOfKey:    c.PrimaryKey,
		})
		if c.PrimaryKey {
			primary = append(primary, c.Name)
		}
	}
	if pk := slices.IndexFunc(keys, func(k connectors.Key) bool { return k.Type == connectors.KeyPrimary }); pk >= 0 && sameSet(keys[pk].Columns, primary) {
		primary = keys[pk].Columns // the key's own column order
	}
	return schemaMetadata{
		SchemaName:     b.datasetName(t.Schema, t.Name),
		Platform:       platformURN(b.platform),
		Version:        0,
		Created:        stamp,
		LastModified:   stamp,
		Hash:           "",
		PlatformSchema: map[string]mySQLDDL{"com.linkedin.schema.MySqlDDL": {TableSchema: ""}},
		Fields:         fields,
		PrimaryKeys:    primary,
		ForeignKeys:    b.foreignKeys(t, urn, keys),
	}
}

// sameSet reports whether a and b hold the same names.
func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// foreignKeys returns the table's foreign keys, sorted by name. A key whose referenced columns
// the catalog does not pair with its own (SQLite's reference to a primary key it could not
// resolve) names the referenced dataset with no foreign fields.
func (b *builder) foreignKeys(t connectors.Table, urn string, keys []connectors.Key) []foreignKey {
	var out []foreignKey
	for _, k := range keys {
		if k.Type != connectors.KeyForeign {
			continue
		}
		refSchema := k.RefSchema
		if refSchema == "" {
			refSchema = t.Schema
		}
		ref := b.dataset(refSchema, k.RefTable)
		fk := foreignKey{Name: k.Name, ForeignFields: []string{}, SourceFields: []string{}, ForeignDataset: ref}
		for _, c := range k.Columns {
			fk.SourceFields = append(fk.SourceFields, schemaFieldURN(urn, c))
		}
		if len(k.RefColumns) == len(k.Columns) {
			for _, c := range k.RefColumns {
				fk.ForeignFields = append(fk.ForeignFields, schemaFieldURN(ref, c))
			}
		}
		out = append(out, fk)
	}
	slices.SortStableFunc(out, func(x, y foreignKey) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// lineage adds the upstreamLineage of a view: the relations it reads (type VIEW) and, per view
// column with sources, a field-level lineage from them. A column without sources (a constant)
// has none.
func (b *builder) lineage(l connectors.Lineage) {
	if l.View == "" {
		b.fail(errors.New("datahub: the catalog has lineage for a view without a name"))
		return
	}
	urn := b.dataset(l.Schema, l.View)
	refs := slices.Clone(l.Upstream)
	confidence := confidenceCatalog
	if l.Method == "parser" {
		confidence = confidenceParser
	}
	var fine []fineGrainedLineage
	for _, c := range l.Columns {
		if len(c.Sources) == 0 {
			continue
		}
		op := transformSQL
		if c.Transformation == connectors.LineageDirect {
			op = transformCopy
		}
		f := fineGrainedLineage{
			UpstreamType:       "FIELD_SET",
			DownstreamType:     "FIELD",
			Downstreams:        []string{schemaFieldURN(urn, c.Column)},
			TransformOperation: op,
			ConfidenceScore:    confidence,
		}
		for _, s := range c.Sources {
			if s.Table == "" || s.Column == "" {
				continue
			}
			f.Upstreams = append(f.Upstreams, schemaFieldURN(b.dataset(s.Schema, s.Table), s.Column))
			refs = append(refs, connectors.RelationRef{Schema: s.Schema, Name: s.Table})
		}
		if len(f.Upstreams) > 0 {
			fine = append(fine, f)
		}
	}
	slices.SortFunc(refs, compareRefs)
	refs = slices.Compact(refs)
	ups := make([]upstream, 0, len(refs))
	for _, r := range refs {
		if r.Name == "" {
			continue
		}
		ups = append(ups, upstream{AuditStamp: stamp, Dataset: b.dataset(r.Schema, r.Name), Type: "VIEW"})
	}
	b.add(entityDataset, urn, "upstreamLineage", upstreamLineage{Upstreams: ups, FineGrainedLineages: fine})
}
