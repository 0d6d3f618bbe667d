package datahub

// The aspects this package emits, as DataHub's PDL model (metadata-models) defines them. Field
// order is the order the JSON is written in; optional fields are omitted when empty.

// auditStamp is com.linkedin.common.AuditStamp.
type auditStamp struct {
	Time  int64  `json:"time"`
	Actor string `json:"actor"`
}

// stamp is every audit stamp's value: a fixed time (0, which the model reads as "missing
// data") and DataHub's system actor, so that a re-run proposes identical aspects.
var stamp = auditStamp{Time: 0, Actor: "urn:li:corpuser:datahub"}

// status is com.linkedin.common.Status.
type status struct {
	Removed bool `json:"removed"`
}

// subTypes is com.linkedin.common.SubTypes.
type subTypes struct {
	TypeNames []string `json:"typeNames"`
}

// containerAspect is com.linkedin.container.Container: the parent container.
type containerAspect struct {
	Container string `json:"container"`
}

// dataPlatformInstance is com.linkedin.common.DataPlatformInstance (no instance: the agent
// knows of none).
type dataPlatformInstance struct {
	Platform string `json:"platform"`
}

// containerProperties is com.linkedin.container.ContainerProperties.
type containerProperties struct {
	CustomProperties map[string]string `json:"customProperties"`
	Name             string            `json:"name"`
	Description      string            `json:"description,omitempty"`
	Env              string            `json:"env,omitempty"`
}

// browsePathsV2 is com.linkedin.common.BrowsePathsV2.
type browsePathsV2 struct {
	Path []browsePathEntry `json:"path"`
}

// browsePathEntry is com.linkedin.common.BrowsePathEntry.
type browsePathEntry struct {
	ID  string `json:"id"`
	URN string `json:"urn,omitempty"`
}

// ownership is com.linkedin.common.Ownership.
type ownership struct {
	Owners       []owner    `json:"owners"`
	LastModified auditStamp `json:"lastModified"`
}

// owner is com.linkedin.common.Owner.
type owner struct {
	Owner  string           `json:"owner"`
	Type   string           `json:"type"`
	Source *ownershipSource `json:"source,omitempty"`
}

// ownershipSource is com.linkedin.common.OwnershipSource.
type ownershipSource struct {
	Type string `json:"type"`
}

// datasetProperties is com.linkedin.dataset.DatasetProperties.
type datasetProperties struct {
	CustomProperties map[string]string `json:"customProperties"`
	Name             string            `json:"name"`
	Description      string            `json:"description,omitempty"`
	Tags             []string          `json:"tags"`
}

// schemaMetadata is com.linkedin.schema.SchemaMetadata.
type schemaMetadata struct {
	SchemaName   string     `json:"schemaName"`
	Platform     string     `json:"platform"`
	Version      int64      `json:"version"`
	Created      auditStamp `json:"created"`
	LastModified auditStamp `json:"lastModified"`
	Hash         string     `json:"hash"`
	// PlatformSchema is the union member {"com.linkedin.schema.MySqlDDL": {"tableSchema": ""}},
	// which DataHub's SQL sources give every SQL platform.
	PlatformSchema map[string]mySQLDDL `json:"platformSchema"`
	Fields         []schemaField       `json:"fields"`
	PrimaryKeys    []string            `json:"primaryKeys,omitempty"`
	ForeignKeys    []foreignKey        `json:"foreignKeys,omitempty"`
}

// mySQLDDL is com.linkedin.schema.MySqlDDL.
type mySQLDDL struct {
	TableSchema string `json:"tableSchema"`
}

// schemaField is com.linkedin.schema.SchemaField.
type schemaField struct {
	FieldPath      string        `json:"fieldPath"`
	Nullable       bool          `json:"nullable"`
	Description    string        `json:"description,omitempty"`
	Type           fieldDataType `json:"type"`
	NativeDataType string        `json:"nativeDataType"`
	Recursive      bool          `json:"recursive"`
	IsPartOfKey    bool          `json:"isPartOfKey"`
}

// fieldDataType is com.linkedin.schema.SchemaFieldDataType: Type holds one union member, keyed
// by its fully qualified name.
type fieldDataType struct {
	Type map[string]typeDetail `json:"type"`
}

// typeDetail is the record of a SchemaFieldDataType member: empty for most, ArrayType's
// nestedType, MapType's keyType and valueType.
type typeDetail struct {
	NestedType []string `json:"nestedType,omitempty"`
	KeyType    string   `json:"keyType,omitempty"`
	ValueType  string   `json:"valueType,omitempty"`
}

// foreignKey is com.linkedin.schema.ForeignKeyConstraint.
type foreignKey struct {
	Name           string   `json:"name"`
	ForeignFields  []string `json:"foreignFields"`
	SourceFields   []string `json:"sourceFields"`
	ForeignDataset string   `json:"foreignDataset"`
}

// viewProperties is com.linkedin.dataset.ViewProperties.
type viewProperties struct {
	Materialized bool   `json:"materialized"`
	ViewLogic    string `json:"viewLogic"`
	ViewLanguage string `json:"viewLanguage"`
}

// upstreamLineage is com.linkedin.dataset.UpstreamLineage.
type upstreamLineage struct {
	Upstreams           []upstream           `json:"upstreams"`
	FineGrainedLineages []fineGrainedLineage `json:"fineGrainedLineages,omitempty"`
}

// upstream is com.linkedin.dataset.Upstream.
type upstream struct {
	AuditStamp auditStamp `json:"auditStamp"`
	Dataset    string     `json:"dataset"`
	Type       string     `json:"type"`
}

// fineGrainedLineage is com.linkedin.dataset.FineGrainedLineage.
type fineGrainedLineage struct {
	UpstreamType       string   `json:"upstreamType"`
	Upstreams          []string `json:"upstreams"`
	DownstreamType     string   `json:"downstreamType"`
	Downstreams        []string `json:"downstreams"`
	TransformOperation string   `json:"transformOperation,omitempty"`
	ConfidenceScore    float64  `json:"confidenceScore"`
}
