package openlineage

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
)

// ErrInvalid is wrapped by every error DatasetEvents returns: the catalog or the options cannot
// be described in OpenLineage terms, and building again will not help.
var ErrInvalid = errors.New("openlineage: cannot build the events")

// Options are what the events of a run carry besides the catalog.
type Options struct {
	// Producer is the URI of the producer, such as
	// "https://github.com/secure-agent/secure-agent/tree/v1.2.3": an absolute URI.
	Producer string
	// EventTime is the run's finish time; every event of a run carries it (in UTC). Required.
	EventTime time.Time
}

// check reports what makes o unusable.
func (o Options) check() error {
	u, err := url.Parse(o.Producer)
	if err != nil {
		return fmt.Errorf("%w: Options.Producer is not a URI: %w", ErrInvalid, err)
	}
	if !u.IsAbs() {
		return fmt.Errorf("%w: Options.Producer must be an absolute URI", ErrInvalid)
	}
	if o.EventTime.IsZero() {
		return fmt.Errorf("%w: Options.EventTime is not set", ErrInvalid)
	}
	if y := o.EventTime.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: Options.EventTime is outside years 1 to 9999", ErrInvalid)
	}
	return nil
}

// DatasetEvents returns one DatasetEvent per relation of c (every connectors.Table, whatever its
// Type), ordered by namespace, then name. The events are a function of c and o alone: the same
// catalog and options give the same events, whatever the order of c's tables. Each carries the
// facets schema (its columns, always), datasetType and hierarchy (always), documentation (when
// the relation has a comment), ownership (when its owner's name is known: not when the owner
// is the login role whose name is withheld) and columnLineage (for a view whose lineage, found
// without a problem, gives source columns for at least one of its columns).
//
// It fails, wrapping ErrInvalid, for unusable options, an unknown connector, a catalog without
// a source label, a relation type or lineage transformation it cannot map, and two lineage
// records for one view or for one view column (the connectors write one per view).
func DatasetEvents(c *catalog.Catalog, o Options) ([]DatasetEvent, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no catalog", ErrInvalid)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	n, err := newNamer(c)
	if err != nil {
		return nil, err
	}
	lineage, err := lineageByView(c.Lineage)
	if err != nil {
		return nil, err
	}
	columns := c.TableColumns()
	base := BaseFacet{Producer: o.Producer}
	events := make([]DatasetEvent, 0, len(c.Tables))
	for _, t := range c.Tables {
		ref := connectors.RelationRef{Schema: t.Schema, Name: t.Name}
		f, err := facets(n, base, t, columns[ref], lineage[ref])
		if err != nil {
			return nil, err
		}
		events = append(events, DatasetEvent{
			EventTime: o.EventTime.UTC(),
			Producer:  o.Producer,
			SchemaURL: eventSchemaURL,
			Dataset:   Dataset{Namespace: n.namespace, Name: n.name(t.Schema, t.Name), Facets: f},
		})
	}
	// Stable: two relations whose names join to the same dataset name (a dot in a schema or
	// table name) keep the catalog's order; both are written, as a consumer of these
	// conventions would meet them from any producer, rather than failing the run.
	slices.SortStableFunc(events, func(a, b DatasetEvent) int {
		return cmp.Or(cmp.Compare(a.Dataset.Namespace, b.Dataset.Namespace), cmp.Compare(a.Dataset.Name, b.Dataset.Name))
	})
	return events, nil
}

// facets returns the facets of table t, with its columns and its view lineage (nil for none).
func facets(n namer, base BaseFacet, t connectors.Table, cols []connectors.Column, lin *connectors.Lineage) (Facets, error) {
	kind, sub, err := datasetType(t.Type)
	if err != nil {
		return Facets{}, fmt.Errorf("%w: relation %q: %w", ErrInvalid, n.name(t.Schema, t.Name), err)
	}
	f := Facets{
		DatasetType: &DatasetTypeFacet{BaseFacet: with(base, datasetTypeFacetURL), DatasetType: kind, SubType: sub},
		Hierarchy:   &HierarchyFacet{BaseFacet: with(base, hierarchyFacetURL), Hierarchy: n.levels(t.Schema, t.Name)},
		Schema:      schemaFacet(base, cols),
	}
	if t.Comment != "" {
		f.Documentation = &DocumentationFacet{BaseFacet: with(base, documentationFacetURL), Description: t.Comment}
	}
	// An empty Owner with OwnerIsLoginRole is the login role, whose name is withheld on
	// purpose (it may be a secret): no facet rather than a guess.
	if t.Owner != "" {
		f.Ownership = &OwnershipFacet{BaseFacet: with(base, ownershipFacetURL),
			Owners: []Owner{{Name: ownerNamePrefix + t.Owner, Type: ownerTypeOwner}}}
	}
	if lin != nil {
		cl, err := columnLineage(n, base, lin)
		if err != nil {
			return Facets{}, fmt.Errorf("%w: view %q: %w", ErrInvalid, n.name(t.Schema, t.Name), err)
		}
		f.ColumnLineage = cl
	}
	return f, nil
}

// with returns base with the facet's schema URL.
func with(base BaseFacet, schemaURL string) BaseFacet {
	base.SchemaURL = schemaURL
	return base
}

// schemaFacet returns the schema facet of a relation with columns cols, in position order.
func schemaFacet(base BaseFacet, cols []connectors.Column) *SchemaFacet {
	cols = slices.Clone(cols)
	slices.SortStableFunc(cols, func(a, b connectors.Column) int { return cmp.Compare(a.Position, b.Position) })
	fields := make([]SchemaField, len(cols))
	for i, c := range cols {
		fields[i] = SchemaField{Name: c.Name, Type: c.DataType, Description: c.Comment, OrdinalPosition: c.Position}
	}
	return &SchemaFacet{BaseFacet: with(base, schemaFacetURL), Fields: fields}
}

// datasetType maps a connectors.Table Type to the datasetType facet's type and subtype. The
// spec names TABLE and VIEW among its types and MATERIALIZED and EXTERNAL among its subtypes
// (its own example is VIEW/MATERIALIZED); the other subtypes name our finer kinds the same way.
func datasetType(tableType string) (kind, subType string, err error) {
	switch tableType {
	case connectors.TableTypeTable:
		return "TABLE", "", nil
	case connectors.TableTypePartitioned:
		return "TABLE", "PARTITIONED", nil
	case connectors.TableTypePartition:
		return "TABLE", "PARTITION", nil
	case connectors.TableTypeForeign:
		return "TABLE", "EXTERNAL", nil
	case connectors.TableTypeVirtual:
		return "TABLE", "VIRTUAL", nil
	case connectors.TableTypeView:
		return "VIEW", "", nil
	case connectors.TableTypeMaterializedView:
		return "VIEW", "MATERIALIZED", nil
	}
	return "", "", fmt.Errorf("unknown relation type %q", tableType)
}
