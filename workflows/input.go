package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/output/s3"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// Input is what a person types into the Web UI's "Start Workflow" box, or passes with
// `temporal workflow start --input` or `secure-agent run --input`. It is stored in workflow
// history, so it holds names of secrets and non-secret settings, never a secret value.
type Input struct {
	// Connector is the kind of source: see connectors.Names.
	Connector string `json:"connector"`
	// Connection gives each connection field either the key (or name) of a secret in the secret
	// store, or a literal value. Sensitive fields must name a secret.
	Connection map[string]FieldValue `json:"connection"`
	// SecretStore says where the secrets are. Optional when no field reads a secret.
	SecretStore *stores.Spec `json:"secretStore,omitempty"`
	// Filters select schemas and tables.
	Filters connectors.Filters `json:"filters,omitzero"`
	// Output says where metadata goes.
	Output OutputSpec `json:"output,omitzero"`
	// Options tune the run; zero values take the defaults.
	Options RunOptions `json:"options,omitzero"`
	// Source is the label of the source in the output (every entity's "source"): a name the
	// operator chooses, such as "orders-prod". It is written as given; never a secret.
	Source string `json:"source,omitempty"`

	problems inputProblems // what UnmarshalJSON could not take; see Validate
	// before is the rules a replayed run was validated with: 0 for the current ones, or one of
	// the rulesBefore constants (see validateInput).
	before int
}

// Validation rules older runs replay with, oldest first: a run validated with rulesBeforeX
// also lacks everything a later constant names.
const (
	// rulesBeforeStoreFields: secretStore.fields and Azure's workload-identity did not exist,
	// so an input that used them was refused.
	rulesBeforeStoreFields = 1
	// rulesBeforeSource: the source label did not exist, so an input that set it was refused.
	rulesBeforeSource = 2
	// rulesBeforeIncremental: options.incremental did not exist, so an input that set it was
	// refused.
	rulesBeforeIncremental = 3
	// rulesBeforeFormats: output.formats did not exist, so an input that set it was refused.
	rulesBeforeFormats = 4
	// rulesBeforePush: output.push did not exist, so an input that set it was refused.
	rulesBeforePush = 5
	// rulesBeforeVault: the vault store type did not exist, so an input that named it was
	// refused.
	rulesBeforeVault = 6
	// rulesBeforeIAM: the connectors had no authMethod, awsRegion, awsRoleArn or awsExternalId
	// field, so an input that set them was refused.
	rulesBeforeIAM = 7
)

// MaxSourceLength bounds Input.Source, in bytes.
const MaxSourceLength = 200

// olderThan reports whether the run replays with rules older than those named by rules.
func (in Input) olderThan(rules int) bool { return in.before != 0 && in.before <= rules }

// FieldValue is a connection field's value as typed: a JSON string, or a number or boolean,
// which is taken as its JSON text (so "port": 5432 and "port": "5432" mean the same).
type FieldValue string

// UnmarshalJSON accepts a string, number or boolean.
func (v *FieldValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = FieldValue(s)
		return nil
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	switch x.(type) {
	case float64, bool:
		*v = FieldValue(b)
		return nil
	}
	return errors.New("a connection field must be a string, number or boolean") // never echo the value
}

// OutputSpec says where the metadata of a run is written.
type OutputSpec struct {
	// Type is "local" (the default): the agent's output directory, set on the agent with
	// SECURE_AGENT_OUTPUT_DIR; or "s3": staged there, then published to S3-compatible storage.
	Type string `json:"type,omitempty"`
	// Prefix is an optional relative sub-directory of the output directory (for example a team
	// name), and for s3 the key prefix. It cannot climb out of either.
	Prefix string `json:"prefix,omitempty"`

	// S3 (type "s3"): the bucket, its region, and for MinIO-style stores an endpoint URL and
	// path-style addressing.
	Bucket    string `json:"bucket,omitempty"`
	Region    string `json:"region,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	PathStyle bool   `json:"pathStyle,omitempty"`
	// Credentials are the sink's own credential fields, resolved like connection fields from the
	// same secret store: accessKeyId, secretAccessKey (sensitive) and sessionToken (sensitive).
	// Without them the agent's default AWS credential chain is used (IRSA, instance role, ...).
	Credentials map[string]FieldValue `json:"credentials,omitempty"`

	// Formats are catalog formats the run is also written in, beside its own files:
	// "openlineage" (openlineage.jsonl, one DatasetEvent per table and view) and "datahub"
	// (datahub.json, metadata change proposals for DataHub's file source). They need Source,
	// which names the source in them (the host may be a secret).
	Formats []string `json:"formats,omitempty"`
	// Push sends the run's catalog formats to catalogs over HTTP (see PushSpec); a target pushed
	// to is written as a format whether or not Formats lists it.
	Push *PushSpec `json:"push,omitempty"`
}

// PushSpec names the catalogs a run is sent to, each by its fields (activities.PushFields),
// resolved like connection fields from the run's secret store: a value is the name or key of
// the secret that holds it, or, for a non-sensitive field (url), possibly a literal.
type PushSpec struct {
	// OpenLineage: url (the endpoint's base URL; events go to <url>/api/v1/lineage) and apiKey
	// (sensitive, sent as a bearer token).
	OpenLineage map[string]FieldValue `json:"openlineage,omitempty"`
	// DataHub: url (GMS's base URL; proposals go to <url>/aspects?action=ingestProposal) and
	// token (sensitive, a DataHub access token).
	DataHub map[string]FieldValue `json:"datahub,omitempty"`
}

// targets returns the push targets and their fields, in output.Formats order.
func (p *PushSpec) targets() []pushTarget {
	if p == nil {
		return nil
	}
	var out []pushTarget
	if len(p.OpenLineage) > 0 {
		out = append(out, pushTarget{output.FormatOpenLineage, p.OpenLineage})
	}
	if len(p.DataHub) > 0 {
		out = append(out, pushTarget{output.FormatDataHub, p.DataHub})
	}
	return out
}

type pushTarget struct {
	name   string
	fields map[string]FieldValue
}

// catalogFormats are the formats Finalize writes: output.formats and every push target.
func (o OutputSpec) catalogFormats() []string {
	var out []string
	for _, f := range output.Formats {
		pushed := slices.ContainsFunc(o.Push.targets(), func(t pushTarget) bool { return t.name == f })
		if slices.Contains(o.Formats, f) || pushed {
			out = append(out, f)
		}
	}
	return out
}

// s3Config is the sink configuration of an s3 output.
func (o OutputSpec) s3Config() s3.Config {
	return s3.Config{Bucket: o.Bucket, Region: o.Region, Endpoint: o.Endpoint, PathStyle: o.PathStyle, Prefix: o.Prefix}
}

// RunOptions tune one run.
type RunOptions struct {
	// SchemasPerBatch is how many schemas one extraction activity handles. Default: the schemas
	// split evenly over MaxConcurrentBatches, at most MaxEvenSchemasPerBatch per batch (runs
	// recorded before that default: DefaultSchemasPerBatch).
	SchemasPerBatch int `json:"schemasPerBatch,omitempty"`
	// MaxConcurrentBatches bounds how many extraction activities run at once (default 4).
	MaxConcurrentBatches int `json:"maxConcurrentBatches,omitempty"`
	// ResolveTimeoutSeconds bounds how long ResolveSecrets keeps retrying a secret store that is
	// unavailable or throttling (its schedule-to-close timeout): after it the run fails with
	// StoreUnavailable. Default 600 (10 minutes).
	ResolveTimeoutSeconds int `json:"resolveTimeoutSeconds,omitempty"`
	// Incremental is "auto" (reuse, from the last incremental run of the same source, the output
	// of every schema whose fingerprint has not changed, and report the changes), "full"
	// (extract everything, and be the base of later auto runs), or "" (neither: the default).
	Incremental string `json:"incremental,omitempty"`
}

// Limits on RunOptions.
const (
	DefaultSchemasPerBatch      = 10
	MaxEvenSchemasPerBatch      = 25
	MaxSchemasPerBatch          = 1000
	DefaultMaxConcurrentBatches = 4
	MaxMaxConcurrentBatches     = 64
	DefaultResolveTimeout       = 600 // seconds
	MinResolveTimeout           = 10
	MaxResolveTimeout           = 3600
)

func (o RunOptions) withDefaults() RunOptions {
	if o.SchemasPerBatch == 0 {
		o.SchemasPerBatch = DefaultSchemasPerBatch
	}
	if o.MaxConcurrentBatches == 0 {
		o.MaxConcurrentBatches = DefaultMaxConcurrentBatches
	}
	if o.ResolveTimeoutSeconds == 0 {
		o.ResolveTimeoutSeconds = DefaultResolveTimeout
	}
	return o
}

// Validate reports every problem of the input at once. It is pure and deterministic, so the
// workflow calls it first, and so do the CLI and tests. It returns nil or the list of problems,
// each saying what to fix.
func (in Input) Validate() []string {
	if len(in.problems.decode) > 0 {
		return slices.Clone(in.problems.decode)
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if f := in.problems.unknownField; f != "" {
		if len(f) > 80 {
			f = f[:77] + "..."
		}
		add("the input has an unknown field %s: check its spelling and where it is nested against schema/input.schema.json", f)
	}

	spec, ok := connectors.Lookup(in.Connector)
	switch {
	case in.Connector == "":
		add("connector is missing: set it to one of %s", strings.Join(connectors.Names(), ", "))
	case !ok:
		add("connector %q is not supported: use one of %s", in.Connector, strings.Join(connectors.Names(), ", "))
	}
	var storeFields map[string]stores.SecretField
	if in.SecretStore != nil {
		storeFields = in.SecretStore.Fields
		if in.olderThan(rulesBeforeStoreFields) {
			if len(storeFields) > 0 {
				add("the input has an unknown field secretStore.fields: check its spelling and where it is nested against schema/input.schema.json")
			}
			if in.SecretStore.Type == stores.TypeAzure && in.SecretStore.AuthMethod == "workload-identity" {
				add("secretStore: authMethod must be managed-identity or service-principal")
			}
			storeFields = nil
		}
	}
	if ok {
		if in.olderThan(rulesBeforeIAM) {
			// Runs validated before the IAM fields existed refused them as unknown.
			spec.Fields = slices.DeleteFunc(slices.Clone(spec.Fields), func(f connectors.FieldSpec) bool {
				return f.Name == "authMethod" || f.Name == "awsRegion" || f.Name == "awsRoleArn" || f.Name == "awsExternalId"
			})
		}
		for _, name := range sortedKeys(in.Connection) {
			if _, known := spec.Field(name); !known {
				add("connection.%s is not a field of the %s connector: its fields are %s", name, spec.Name, strings.Join(spec.FieldNames(), ", "))
			}
		}
		for _, name := range sortedKeys(storeFields) {
			_, known := spec.Field(name)
			_, inConnection := in.Connection[name]
			switch {
			case !known:
				add("secretStore.fields.%s is not a field of the %s connector: its fields are %s", name, spec.Name, strings.Join(spec.FieldNames(), ", "))
			case inConnection:
				add("connection.%s is also named in secretStore.fields: give it in one of them", name)
			}
		}
		for _, f := range spec.Fields {
			_, fromSecret := storeFields[f.Name]
			if v, set := in.Connection[f.Name]; f.Required && !fromSecret && (!set || strings.TrimSpace(string(v)) == "") {
				add("connection.%s is required: %s", f.Name, f.Doc)
			}
		}
	}
	for _, name := range sortedKeys(in.Connection) {
		if len(in.Connection[name]) > 4096 {
			add("connection.%s is longer than 4096 characters", name)
		}
	}
	switch {
	case in.SecretStore == nil:
	case in.SecretStore.Type == stores.TypeVault && in.olderThan(rulesBeforeVault):
		add("secretStore: type %q is not supported: use one of aws, azure, gcp, env, custom", stores.TypeVault)
	default:
		for _, p := range stores.Validate(*in.SecretStore) {
			add("secretStore: %s", p)
		}
	}
	for _, p := range in.Filters.Validate() {
		add("%s", p)
	}
	switch in.Output.Type {
	case "", "local":
		for _, f := range []struct {
			name string
			set  bool
		}{{"bucket", in.Output.Bucket != ""}, {"region", in.Output.Region != ""}, {"endpoint", in.Output.Endpoint != ""},
			{"pathStyle", in.Output.PathStyle}, {"credentials", len(in.Output.Credentials) > 0}} {
			if f.set {
				add("output.%s is only used by the s3 output; remove it or set output.type to \"s3\"", f.name)
			}
		}
	case "s3":
		for _, p := range in.Output.s3Config().Validate() {
			add("output: %s", p)
		}
		for _, name := range sortedKeys(in.Output.Credentials) {
			if !slices.ContainsFunc(activities.SinkFields, func(f connectors.FieldSpec) bool { return f.Name == name }) {
				add("output.credentials.%s is not a sink credential field: use accessKeyId, secretAccessKey and sessionToken", name)
			}
		}
		_, hasID := in.Output.Credentials["accessKeyId"]
		_, hasKey := in.Output.Credentials["secretAccessKey"]
		if hasID != hasKey {
			add("output.credentials needs both accessKeyId and secretAccessKey, or neither (to use the agent's own AWS identity)")
		}
	default:
		add("output.type %q is not supported: use \"local\" or \"s3\"", in.Output.Type)
	}
	if msg := output.PrefixProblem(in.Output.Prefix); msg != "" {
		add("output.prefix %q %s", in.Output.Prefix, msg)
	}
	switch {
	case len(in.Output.Formats) == 0:
	case in.olderThan(rulesBeforeFormats):
		add("the input has an unknown field output.formats: check its spelling and where it is nested against schema/input.schema.json")
	default:
		seen := map[string]bool{}
		for _, f := range in.Output.Formats {
			switch {
			case !slices.Contains(output.Formats, f):
				add("output.formats: %q is not a format the agent writes: use %q", f, output.Formats)
			case seen[f]:
				add("output.formats lists %q twice", f)
			}
			seen[f] = true
		}
		if in.Source == "" {
			add("output.formats needs source: a label that names the source in the catalog's names (such as \"orders-prod\"), since the host and database names may be secrets and are never written")
		}
	}
	switch {
	case in.Output.Push == nil:
	case in.olderThan(rulesBeforePush):
		add("the input has an unknown field output.push: check its spelling and where it is nested against schema/input.schema.json")
	default:
		targets := in.Output.Push.targets()
		if len(targets) == 0 {
			add("output.push names no catalog: give openlineage or datahub, each with its url, or leave push out")
		}
		for _, t := range targets {
			specs := activities.PushFields[t.name]
			for _, name := range sortedKeys(t.fields) {
				i := slices.IndexFunc(specs, func(fs connectors.FieldSpec) bool { return fs.Name == name })
				switch {
				case i < 0:
					add("output.push.%s.%s is not a field of that catalog: use %s", t.name, name, fieldNames(specs))
				case strings.TrimSpace(string(t.fields[name])) == "":
					add("output.push.%s.%s is empty: give the name or key of the secret that holds it", t.name, name)
				case len(t.fields[name]) > activities.MaxFieldBytes:
					add("output.push.%s.%s is longer than %d characters", t.name, name, activities.MaxFieldBytes)
				}
			}
			if _, ok := t.fields["url"]; !ok {
				add("output.push.%s needs url: the catalog's base URL, or the name or key of the secret that holds it", t.name)
			}
		}
		if in.Source == "" && len(in.Output.Formats) == 0 {
			add("output.push needs source: a label that names the source in the catalog's names (such as \"orders-prod\"), since the host and database names may be secrets and are never written")
		}
	}
	switch {
	case in.Source == "":
	case in.olderThan(rulesBeforeSource):
		add("the input has an unknown field source: check its spelling and where it is nested against schema/input.schema.json")
	case len(in.Source) > MaxSourceLength || !utf8.ValidString(in.Source) || strings.TrimSpace(in.Source) != in.Source ||
		strings.ContainsFunc(in.Source, unicode.IsControl):
		add("source must be a label of at most %d bytes of UTF-8 text, without control characters or surrounding spaces, such as \"orders-prod\"", MaxSourceLength)
	}
	o := in.Options
	if o.SchemasPerBatch < 0 || o.SchemasPerBatch > MaxSchemasPerBatch {
		add("options.schemasPerBatch must be between 1 and %d", MaxSchemasPerBatch)
	}
	if o.MaxConcurrentBatches < 0 || o.MaxConcurrentBatches > MaxMaxConcurrentBatches {
		add("options.maxConcurrentBatches must be between 1 and %d", MaxMaxConcurrentBatches)
	}
	switch {
	case o.Incremental == "":
	case in.olderThan(rulesBeforeIncremental):
		add("the input has an unknown field options.incremental: check its spelling and where it is nested against schema/input.schema.json")
	case o.Incremental != activities.IncrementalAuto && o.Incremental != activities.IncrementalFull:
		add("options.incremental must be %q (reuse what did not change since the last incremental run of this source) or %q (extract everything and start again from this run); leave it out for a run that keeps no incremental state",
			activities.IncrementalAuto, activities.IncrementalFull)
	}
	if t := o.ResolveTimeoutSeconds; t != 0 && (t < MinResolveTimeout || t > MaxResolveTimeout) {
		add("options.resolveTimeoutSeconds must be between %d and %d (seconds); leave it out for the default %d",
			MinResolveTimeout, MaxResolveTimeout, DefaultResolveTimeout)
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// StartProblems reports everything a client should refuse before it starts a workflow with this
// input, because starting it would already write the problem into workflow history: every
// problem of Validate; a sensitive field given as a literal while there is no secret store to
// name (its value would be kept in history in the clear), unless allowSensitiveLiterals (local
// development); and store settings that only the agent's operator may set. The agent refuses all
// of them again, whoever starts the workflow; a client that checks first keeps a value typed by
// mistake out of history. Problems name fields, never the values given.
func (in Input) StartProblems(allowSensitiveLiterals bool) []string {
	problems := in.Validate()
	if in.SecretStore != nil {
		for _, p := range stores.BoundaryProblems(*in.SecretStore) {
			problems = append(problems, "secretStore: "+p)
		}
	}
	if in.SecretStore != nil || allowSensitiveLiterals {
		return problems
	}
	const literal = "is sensitive, and without a secretStore its value would be a literal, kept in workflow history in the clear: add a secretStore and give the name or key of the secret that holds it (nothing was started)"
	if spec, ok := connectors.Lookup(in.Connector); ok {
		for _, name := range sortedKeys(in.Connection) {
			if f, known := spec.Field(name); known && f.Sensitive && in.Connection[name] != "" {
				problems = append(problems, fmt.Sprintf("connection.%s %s", name, literal))
			}
		}
	}
	for _, f := range activities.SinkFields {
		if v, set := in.Output.Credentials[f.Name]; set && f.Sensitive && v != "" {
			problems = append(problems, fmt.Sprintf("output.credentials.%s %s", f.Name, literal))
		}
	}
	for _, t := range in.Output.Push.targets() {
		for _, f := range activities.PushFields[t.name] {
			if v, set := t.fields[f.Name]; set && f.Sensitive && v != "" {
				problems = append(problems, fmt.Sprintf("output.push.%s.%s %s", t.name, f.Name, literal))
			}
		}
	}
	return problems
}

// fieldNames lists the names of specs, for messages.
func fieldNames(specs []connectors.FieldSpec) string {
	names := make([]string, len(specs))
	for i, f := range specs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
