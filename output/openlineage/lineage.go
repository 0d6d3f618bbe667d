package openlineage

import (
	"fmt"

	"github.com/secure-agent/secure-agent/connectors"
)

// lineageByView indexes the lineage records that were found without a problem by their view.
// A record with Problem set says nothing was found, and is left out.
func lineageByView(records []connectors.Lineage) (map[connectors.RelationRef]*connectors.Lineage, error) {
	out := map[connectors.RelationRef]*connectors.Lineage{}
	for i := range records {
		l := &records[i]
		if l.Problem != "" {
			continue
		}
		ref := connectors.RelationRef{Schema: l.Schema, Name: l.View}
		if _, dup := out[ref]; dup {
			return nil, fmt.Errorf("%w: two lineage records for view %q", ErrInvalid, l.Schema+"."+l.View)
		}
		out[ref] = l
	}
	return out, nil
}

// transformation maps a connectors lineage transformation to the spec's. Both are DIRECT (the
// view column's value is derived from the source column's): LineageDirect, the column copied
// or renamed, is IDENTITY; LineageExpression, computed by an expression, function, aggregate or
// CASE, is TRANSFORMATION (the model does not tell an aggregate, the spec's AGGREGATION, from
// the rest). The model records no INDIRECT use (joins, filters, sorts), so none is emitted.
func transformation(kind string) (Transformation, error) {
	switch kind {
	case connectors.LineageDirect:
		return Transformation{Type: transformationDirect, Subtype: subtypeIdentity}, nil
	case connectors.LineageExpression:
		return Transformation{Type: transformationDirect, Subtype: subtypeTransformation}, nil
	}
	return Transformation{}, fmt.Errorf("unknown lineage transformation %q", kind)
}

// columnLineage returns the columnLineage facet of a view with lineage l, or nil when no column
// of the view has a source column (constants only, or no columns recorded). Source columns are
// named in the view's namespace: a view reads relations of its own source.
func columnLineage(n namer, base BaseFacet, l *connectors.Lineage) (*ColumnLineageFacet, error) {
	fields := map[string]ColumnLineageField{}
	seen := map[string]bool{}
	for _, c := range l.Columns {
		if seen[c.Column] {
			return nil, fmt.Errorf("two lineage records for column %q", c.Column)
		}
		seen[c.Column] = true
		if len(c.Sources) == 0 {
			continue // a constant: derived from no column
		}
		tr, err := transformation(c.Transformation)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Column, err)
		}
		in := make([]InputField, len(c.Sources))
		for i, s := range c.Sources {
			in[i] = InputField{Namespace: n.namespace, Name: n.name(s.Schema, s.Table), Field: s.Column,
				Transformations: []Transformation{tr}}
		}
		fields[c.Column] = ColumnLineageField{InputFields: in}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	return &ColumnLineageFacet{BaseFacet: with(base, columnLineageFacetURL), Fields: fields}, nil
}
