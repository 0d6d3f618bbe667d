package openlineage

import "time"

// Schema URLs: each spec file's $id (see the package doc for the commit they were read at),
// with the JSON pointer to the definition the object follows.
const (
	eventSchemaURL         = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"
	schemaFacetURL         = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
	documentationFacetURL  = "https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet"
	ownershipFacetURL      = "https://openlineage.io/spec/facets/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet"
	datasetTypeFacetURL    = "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet"
	columnLineageFacetURL  = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
	hierarchyFacetURL      = "https://openlineage.io/spec/facets/1-0-0/HierarchyDatasetFacet.json#/$defs/HierarchyDatasetFacet"
	transformationDirect   = "DIRECT"
	subtypeIdentity        = "IDENTITY"
	subtypeTransformation  = "TRANSFORMATION"
	ownerTypeOwner         = "OWNER"
	ownerNamePrefix        = "user:"
	hierarchyLevelDatabase = "DATABASE"
	hierarchyLevelSchema   = "SCHEMA"
	hierarchyLevelTable    = "TABLE"
)

// DatasetEvent is an OpenLineage static-metadata event about one dataset (the spec's
// DatasetEvent: no run, no job).
type DatasetEvent struct {
	// EventTime is the run's finish time, in UTC.
	EventTime time.Time `json:"eventTime"`
	// Producer is the URI of the software that produced the event (Options.Producer).
	Producer string `json:"producer"`
	// SchemaURL is the spec's DatasetEvent definition, OpenLineage.json 2-0-2.
	SchemaURL string  `json:"schemaURL"`
	Dataset   Dataset `json:"dataset"`
}

// Dataset names one table or view and carries its facets.
type Dataset struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Facets    Facets `json:"facets"`
}

// Facets are the dataset facets this package emits, each under the key the spec gives it; a
// nil facet is left out.
type Facets struct {
	ColumnLineage *ColumnLineageFacet `json:"columnLineage,omitempty"`
	DatasetType   *DatasetTypeFacet   `json:"datasetType,omitempty"`
	Documentation *DocumentationFacet `json:"documentation,omitempty"`
	Hierarchy     *HierarchyFacet     `json:"hierarchy,omitempty"`
	Ownership     *OwnershipFacet     `json:"ownership,omitempty"`
	Schema        *SchemaFacet        `json:"schema,omitempty"`
}

// BaseFacet holds the fields every facet carries.
type BaseFacet struct {
	// Producer is the URI of the software that produced the facet (Options.Producer).
	Producer string `json:"_producer"`
	// SchemaURL is the facet schema's $id with the pointer to its definition.
	SchemaURL string `json:"_schemaURL"`
}

// SchemaFacet is SchemaDatasetFacet: the dataset's columns, in position order. A relation
// without columns has an empty Fields, which the spec allows.
type SchemaFacet struct {
	BaseFacet
	Fields []SchemaField `json:"fields"`
}

// SchemaField is one column: its name, its type as the engine declares it (omitted when it has
// none, as SQLite allows), its comment (omitted when empty) and its 1-based position.
type SchemaField struct {
	Name            string `json:"name"`
	Type            string `json:"type,omitempty"`
	Description     string `json:"description,omitempty"`
	OrdinalPosition int    `json:"ordinal_position,omitempty"`
}

// DocumentationFacet is DocumentationDatasetFacet: the relation's comment.
type DocumentationFacet struct {
	BaseFacet
	Description string `json:"description"`
}

// OwnershipFacet is OwnershipDatasetFacet.
type OwnershipFacet struct {
	BaseFacet
	Owners []Owner `json:"owners"`
}

// Owner is one owner: Name "user:<role>", Type "OWNER".
type Owner struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// DatasetTypeFacet is DatasetTypeDatasetFacet: "TABLE" or "VIEW", with a SubType for the finer
// kinds (see datasetType).
type DatasetTypeFacet struct {
	BaseFacet
	DatasetType string `json:"datasetType"`
	SubType     string `json:"subType,omitempty"`
}

// HierarchyFacet is HierarchyDatasetFacet: the parts of the dataset's name, highest first.
type HierarchyFacet struct {
	BaseFacet
	Hierarchy []HierarchyLevel `json:"hierarchy"`
}

// HierarchyLevel is one level: Type "DATABASE", "SCHEMA" or "TABLE", and its name.
type HierarchyLevel struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// ColumnLineageFacet is ColumnLineageDatasetFacet: for each view column fed by source columns
// (keyed by the view column's name), those columns.
type ColumnLineageFacet struct {
	BaseFacet
	Fields map[string]ColumnLineageField `json:"fields"`
}

// ColumnLineageField lists the columns one view column is computed from.
type ColumnLineageField struct {
	InputFields []InputField `json:"inputFields"`
}

// InputField is one source column: its dataset's namespace and name, the column's name, and
// how the view column derives from it.
type InputField struct {
	Namespace       string           `json:"namespace"`
	Name            string           `json:"name"`
	Field           string           `json:"field"`
	Transformations []Transformation `json:"transformations,omitempty"`
}

// Transformation is Type "DIRECT" with Subtype "IDENTITY" (copied, renamed at most) or
// "TRANSFORMATION" (computed).
type Transformation struct {
	Type    string `json:"type"`
	Subtype string `json:"subtype,omitempty"`
}
