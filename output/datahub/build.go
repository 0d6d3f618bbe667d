package datahub

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output/catalog"
)

// DefaultEnv is the fabric proposals are for when Options.Env is empty.
const DefaultEnv = "PROD"

// fabricTypes are the values of DataHub's FabricType enum (com.linkedin.common.FabricType), the
// environments a dataset URN may name.
var fabricTypes = []string{"DEV", "TEST", "QA", "UAT", "EI", "PRE", "STG", "NON_PROD", "PROD",
	"CORP", "RVW", "PRD", "TST", "SIT", "SBX", "SANDBOX"}

// Options tune Proposals.
type Options struct {
	// Env is the DataHub fabric of the datasets and containers: one of the values of DataHub's
	// FabricType enum (DEV, TEST, QA, UAT, EI, PRE, STG, NON_PROD, PROD, CORP, RVW, PRD, TST,
	// SIT, SBX, SANDBOX), DefaultEnv when empty.
	Env string
}

// platforms maps a connector's name to its DataHub data platform.
var platforms = map[string]string{"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

// Entity types.
const (
	entityContainer = "container"
	entityDataset   = "dataset"
)

// ownershipType is the type of every owner: the role that owns a database object is its
// technical owner (TECHNICAL_OWNER replaces the deprecated DATAOWNER in the current model).
const ownershipType = "TECHNICAL_OWNER"

// Proposals returns the proposals that describe c in DataHub (see the package documentation),
// in a fixed order: the database container, the schema containers by name, then the datasets
// by schema and name, each entity's aspects together (the lineage of a view the catalog has no
// table entity for comes last). The same catalog and options always give
// the same proposals. An error says what in c or o cannot be proposed; no proposal is returned
// with it.
func Proposals(c *catalog.Catalog, o Options) ([]Proposal, error) {
	if c == nil {
		return nil, errors.New("datahub: no catalog")
	}
	env := o.Env
	if env == "" {
		env = DefaultEnv
	}
	if !slices.Contains(fabricTypes, env) {
		return nil, fmt.Errorf("datahub: env %q is not a DataHub fabric type (%s)", env, strings.Join(fabricTypes, ", "))
	}
	platform, ok := platforms[c.Connector]
	if !ok {
		return nil, fmt.Errorf("datahub: connector %q has no DataHub platform (postgres, mysql and sqlite have)", c.Connector)
	}
	b := &builder{c: c, platform: platform, env: env, twoTier: c.Connector == "mysql", db: c.Database()}
	if b.db == "" && !b.twoTier {
		return nil, errors.New("datahub: the catalog has neither a database name nor a source label to name its database by")
	}
	b.containers()
	b.datasets()
	if b.err != nil {
		return nil, b.err
	}
	return b.out, nil
}

// builder accumulates the proposals of one catalog; the first error stops it.
type builder struct {
	c        *catalog.Catalog
	platform string
	env      string
	// twoTier is set for MySQL, where a schema is a database: schemas are "Database"
	// containers, with no container above them, and datasets are named <schema>.<table>.
	twoTier bool
	// db is c.Database(): the database's name, or the source label when it is withheld.
	db  string
	out []Proposal
	err error
}

// add appends the proposal of aspect v of an entity.
func (b *builder) add(entityType, urn, aspectName string, v any) {
	if b.err != nil {
		return
	}
	raw, err := marshal(v, "")
	if err != nil {
		b.err = fmt.Errorf("datahub: aspect %s of %s: %w", aspectName, urn, err)
		return
	}
	b.out = append(b.out, Proposal{EntityType: entityType, EntityURN: urn, AspectName: aspectName, Aspect: raw})
}

// fail records err unless an error is recorded already.
func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// dbKey is the key of the database container (PostgreSQL, SQLite).
func (b *builder) dbKey() map[string]string {
	return map[string]string{"platform": b.platform, "instance": b.env, "database": b.db}
}

// schemaKey is the key of a schema's container: a SchemaKey under the database, or for MySQL
// the DatabaseKey of the schema.
func (b *builder) schemaKey(schema string) map[string]string {
	if b.twoTier {
		return map[string]string{"platform": b.platform, "instance": b.env, "database": schema}
	}
	return map[string]string{"platform": b.platform, "instance": b.env, "database": b.db, "schema": schema}
}

// schemaContainer returns the URN of schema's container.
func (b *builder) schemaContainer(schema string) string {
	return containerURN(containerGUID(b.schemaKey(schema)))
}

// properties returns a container's customProperties: its key's property_dict (the key without
// the instance that stands in for the env, with the env).
func (b *builder) properties(key map[string]string) map[string]string {
	p := map[string]string{"env": b.env}
	for k, v := range key {
		if k != "instance" {
			p[k] = v
		}
	}
	return p
}

// containers adds the database container (unless two-tier) and a container per schema, sorted
// by name: the schemas of c.Schemas and any a table names.
func (b *builder) containers() {
	var parent []browsePathEntry
	if !b.twoTier {
		var d connectors.Database
		if len(b.c.Databases) > 0 {
			d = b.c.Databases[0]
		}
		key := b.dbKey()
		urn := containerURN(containerGUID(key))
		b.container(urn, key, b.db, d.Comment, "Database", "", d.Owner, nil)
		parent = []browsePathEntry{{ID: urn, URN: urn}}
	}
	schemas := map[string]connectors.Schema{}
	for _, s := range b.c.Schemas {
		if _, ok := schemas[s.Name]; !ok {
			schemas[s.Name] = s
		}
	}
	for _, t := range b.c.Tables {
		if _, ok := schemas[t.Schema]; !ok {
			schemas[t.Schema] = connectors.Schema{Name: t.Schema}
		}
	}
	names := make([]string, 0, len(schemas))
	for n := range schemas {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if n == "" {
			b.fail(errors.New("datahub: the catalog has a schema without a name"))
			return
		}
		s := schemas[n]
		key := b.schemaKey(n)
		urn := containerURN(containerGUID(key))
		subType, parentURN := "Schema", ""
		if b.twoTier {
			subType = "Database"
		} else {
			parentURN = parent[0].URN
		}
		b.container(urn, key, n, s.Comment, subType, parentURN, s.Owner, parent)
	}
}

// container adds the aspects of one container, in the order DataHub's gen_containers emits
// them.
func (b *builder) container(urn string, key map[string]string, name, comment, subType, parent, ownerName string, path []browsePathEntry) {
	if parent != "" {
		b.add(entityContainer, urn, "container", containerAspect{Container: parent})
	}
	b.add(entityContainer, urn, "containerProperties", containerProperties{
		CustomProperties: b.properties(key), Name: name, Description: comment, Env: b.env,
	})
	b.add(entityContainer, urn, "status", status{Removed: false})
	b.add(entityContainer, urn, "dataPlatformInstance", dataPlatformInstance{Platform: platformURN(b.platform)})
	b.add(entityContainer, urn, "subTypes", subTypes{TypeNames: []string{subType}})
	if o := ownershipOf(ownerName); o != nil {
		b.add(entityContainer, urn, "ownership", o)
	}
	b.add(entityContainer, urn, "browsePathsV2", browsePathsV2{Path: nonNil(path)})
}

// ownershipOf returns the ownership aspect naming owner, or nil when the owner is not known:
// an empty Owner is either no owner or one the connector withheld (OwnerIsLoginRole), and
// neither is proposed.
func ownershipOf(ownerName string) *ownership {
	if ownerName == "" {
		return nil
	}
	return &ownership{
		Owners:       []owner{{Owner: corpuserURN(ownerName), Type: ownershipType, Source: &ownershipSource{Type: "DATABASE"}}},
		LastModified: stamp,
	}
}

// nonNil returns s, or an empty slice for nil, so that a required array is written as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
