package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// ResolveInput is the input of ResolveSecrets: the connection fields as typed, the output's
// credential fields (if any) and the store.
type ResolveInput struct {
	Connector  string            `json:"connector"`
	Connection map[string]string `json:"connection"`
	Sink       map[string]string `json:"sink,omitempty"`
	// Push are the catalog pushes' fields as typed, keyed "<target>.<field>" (see PushFields).
	Push        map[string]string `json:"push,omitempty"`
	SecretStore *stores.Spec      `json:"secretStore,omitempty"`
	// Refresh, when set, is a lease whose credentials the source refused: the secrets are read
	// again from their stores (never the cache), and a new lease is made only if what they hold
	// changed (a rotation); otherwise the answer is a Lease with Unchanged set and no lease.
	Refresh *Lease `json:"refresh,omitempty"`
}

// ResolveSecrets reads every secret the connection names, applies the field rules, keeps the
// plaintext in this worker's lease store and returns the Lease. It runs on the shared queue; the
// activities that use the lease run on Lease.TaskQueue.
//
// Agent policy is checked before any store call (store type and secret path), and again after
// resolution, before the lease exists: the credentials' destination (host and port, which may
// themselves come from the secret) must be one the policy lists for those secrets. Every secret
// access and every denial is audited, without values.
func (a *Activities) ResolveSecrets(ctx context.Context, in ResolveInput) (*Lease, error) {
	info := activity.GetInfo(ctx)
	spec, ok := connectors.Lookup(in.Connector)
	if !ok {
		return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", in.Connector)}, true)
	}
	if err := a.checkStore(ctx, in.SecretStore); err != nil {
		return nil, appError(err, true)
	}
	src, ref, err := a.Stores.Open(ctx, in.SecretStore)
	if err != nil {
		a.audit(ctx, audit.Event{Event: audit.SecretRead, Store: storeType(in.SecretStore), Secret: refString(ref),
			Outcome: string(secrets.KindOf(err))})
		return nil, appError(err, false)
	}
	req, err := a.request(spec, in, ref)
	if err != nil {
		return nil, appError(err, true)
	}
	req.Guard = guardOf(ctx) // the result guard then knows the sensitive values before a lease exists
	req.Fresh = in.Refresh != nil
	res, err := a.Resolver.Resolve(ctx, src, req)
	if err != nil {
		a.audit(ctx, audit.Event{Event: audit.SecretRead, Store: src.Name, Secret: refString(ref), Outcome: string(secrets.KindOf(err))})
		if secrets.KindOf(err) == secrets.PolicyDenied {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Store: src.Name, Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
		}
		a.logger().Warn("secret resolution failed", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID,
			"store", src.Name, "kind", string(secrets.KindOf(err)))
		return nil, appError(err, false)
	}
	a.auditReads(ctx, src.Name, res)
	// Dynamic credentials the store made for this run: the lease store takes them over below, and
	// ends them with the lease; until then, every way out of this function revokes them.
	dynamic := a.dynamicCreds(src, in.SecretStore, res.Leases, info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	leased := false
	defer func() {
		if !leased {
			a.Leases.Revoke(dynamic)
		}
	}()

	creds := make(connectors.Credentials, len(res.Fields))
	origins := make(map[string]string, len(res.Fields))
	var sensitive []string
	for _, f := range res.Fields {
		creds[f.Field] = f.Value // ownership moves to the lease store, or is zeroed below
		if f.FromSecret {
			origins[f.Field] = PolicyOrigin(in.SecretStore, f.Ref)
		}
		if f.Sensitive {
			sensitive = append(sensitive, f.Field)
		}
	}
	var sourceOrigins []string
	for _, name := range sourceFields(res.FieldNames()) {
		if o := origins[name]; o != "" && !slices.Contains(sourceOrigins, o) {
			sourceOrigins = append(sourceOrigins, o)
		}
	}
	sourceOrigins = append(sourceOrigins, identityOrigins(creds)...)
	slices.Sort(sourceOrigins)
	if _, _, err := a.checkDestination(ctx, in.Connector, creds, sourceOrigins); err != nil {
		zeroCreds(creds)
		return nil, appError(err, true)
	}
	if in.Refresh != nil {
		if !a.rotated(ctx, in, creds, origins, res.Versions) {
			zeroCreds(creds)
			a.logger().Info("the secrets read again hold what the source refused: no rotation", "workflowId", info.WorkflowExecution.ID,
				"runId", info.WorkflowExecution.RunID, "store", src.Name)
			return &Lease{Unchanged: true, Versions: res.Versions}, nil
		}
		// The refused lease is useless now; drop it if it is here (the workflow releases it
		// wherever it is, too).
		_ = a.Leases.Release(in.Refresh.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	}
	leased = true // Put owns the dynamic credentials from here, and revokes them if it refuses
	id, expires, err := a.Leases.Put(LeaseGrant{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Connector: in.Connector, Creds: creds, Origins: origins, Sensitive: sensitive, Dynamic: dynamic})
	if err != nil {
		a.logger().Warn("credential lease refused", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID,
			"kind", string(secrets.KindOf(err)))
		return nil, appError(err, true)
	}
	a.logger().Info("credentials leased", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID,
		"store", src.Name, "fields", res.FieldNames(), "secrets", len(res.Versions), "expiresAt", expires)
	return &Lease{ID: id, TaskQueue: a.LeaseQueue, ExpiresAt: expires, Fields: res.FieldNames(), Versions: res.Versions}, nil
}

// dynamicCreds wraps the leases of the dynamic secrets a resolution read, for the lease store.
func (a *Activities) dynamicCreds(src secrets.Source, spec *stores.Spec, leases []secrets.ResolvedLease, workflowID, runID string) []*DynamicCreds {
	ls, ok := src.Store.(secrets.LeasingStore)
	if !ok {
		return nil
	}
	out := make([]*DynamicCreds, len(leases))
	for i, l := range leases {
		out[i] = &DynamicCreds{WorkflowID: workflowID, RunID: runID, Store: ls, Lease: l.Lease, Secret: PolicyOrigin(spec, l.Ref)}
	}
	return out
}

// rotated reports whether the credentials read again for a refreshed lease differ from the ones
// the source refused: by value, when this worker holds the refused lease; otherwise by the
// stores' version ids, when every secret has one on both sides. When neither can tell, the
// answer is no: trying the same credentials again would only add a failed login.
func (a *Activities) rotated(ctx context.Context, in ResolveInput, creds connectors.Credentials, origins map[string]string, versions []secrets.SecretVersion) bool {
	info := activity.GetInfo(ctx)
	if differs, known := a.Leases.Differs(in.Refresh.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, in.Connector, creds, origins); known {
		return differs
	}
	before := map[string]string{}
	for _, v := range in.Refresh.Versions {
		before[v.Ref.String()] = v.Version
	}
	changed := false
	for _, v := range versions {
		old, ok := before[v.Ref.String()]
		if !ok || old == "" || v.Version == "" {
			return false // a secret without versions, or a new one: cannot tell
		}
		changed = changed || old != v.Version
	}
	return changed
}

// request builds the resolution request: the connector's fields (sensitivity from the connector,
// never from the input) and the output's credential fields.
func (a *Activities) request(spec connectors.Spec, in ResolveInput, ref *secrets.Ref) (secrets.Request, error) {
	req := secrets.Request{Secret: ref, AllowSensitiveLiterals: a.AllowSensitiveLiterals}
	names := make([]string, 0, len(in.Connection))
	for name := range in.Connection {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fs, known := spec.Field(name)
		if !known {
			return req, &secrets.Error{Kind: secrets.InvalidInput, Field: name, Msg: fmt.Sprintf("is not a field of the %s connector", spec.Name)}
		}
		if len(in.Connection[name]) > MaxFieldBytes {
			return req, &secrets.Error{Kind: secrets.InvalidInput, Field: name, Msg: fmt.Sprintf("is longer than %d characters", MaxFieldBytes)}
		}
		req.Fields = append(req.Fields, secrets.Field{Name: name, Value: in.Connection[name], Sensitive: fs.Sensitive})
	}
	for name := range in.Sink {
		if !slices.ContainsFunc(SinkFields, func(fs connectors.FieldSpec) bool { return fs.Name == name }) {
			return req, &secrets.Error{Kind: secrets.InvalidInput, Field: "output.credentials." + name,
				Msg: "is not a sink credential field: use accessKeyId, secretAccessKey and sessionToken"}
		}
	}
	if in.SecretStore != nil {
		for _, name := range slices.Sorted(maps.Keys(in.SecretStore.Fields)) {
			fs, known := spec.Field(name)
			switch {
			case !known:
				return req, &secrets.Error{Kind: secrets.InvalidInput, Field: "secretStore.fields." + name, Msg: fmt.Sprintf("is not a field of the %s connector", spec.Name)}
			case slices.Contains(names, name):
				return req, &secrets.Error{Kind: secrets.InvalidInput, Field: name,
					Msg: "is given both in connection and in secretStore.fields: give it in one of them"}
			}
			sf := in.SecretStore.Fields[name]
			ref := in.SecretStore.FieldRef(sf)
			req.Fields = append(req.Fields, secrets.Field{Name: name, Value: sf.Key, Secret: &ref, Sensitive: fs.Sensitive, Explicit: true})
		}
	}
	for _, fs := range SinkFields {
		if v, ok := in.Sink[fs.Name]; ok {
			if len(v) > MaxFieldBytes {
				return req, &secrets.Error{Kind: secrets.InvalidInput, Field: "output.credentials." + fs.Name, Msg: fmt.Sprintf("is longer than %d characters", MaxFieldBytes)}
			}
			req.Fields = append(req.Fields, secrets.Field{Name: SinkFieldPrefix + fs.Name, Value: v, Sensitive: fs.Sensitive})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(in.Push)) {
		target, field, _ := strings.Cut(name, ".")
		i := slices.IndexFunc(PushFields[target], func(fs connectors.FieldSpec) bool { return fs.Name == field })
		if i < 0 {
			return req, &secrets.Error{Kind: secrets.InvalidInput, Field: "output.push." + name, Msg: "is not a field of a catalog push: use openlineage.url, openlineage.apiKey, datahub.url, datahub.token"}
		}
		v := in.Push[name]
		if len(v) > MaxFieldBytes {
			return req, &secrets.Error{Kind: secrets.InvalidInput, Field: "output.push." + name, Msg: fmt.Sprintf("is longer than %d characters", MaxFieldBytes)}
		}
		req.Fields = append(req.Fields, secrets.Field{Name: pushField(target, field), Value: v, Sensitive: PushFields[target][i].Sensitive})
	}
	return req, nil
}

// MaxFieldBytes bounds one connection or sink field, as the workflow's validation does.
const MaxFieldBytes = 4096

// checkStore applies the policy's store and secret rules to the input's store block, before any
// store is asked anything.
func (a *Activities) checkStore(ctx context.Context, spec *stores.Spec) error {
	if a.Policy == nil || spec == nil {
		return nil
	}
	if err := a.Policy.CheckStore(spec.Type); err != nil {
		a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Store: spec.Type, Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
		return err
	}
	for _, ref := range spec.PolicyRefs() {
		if err := a.Policy.CheckSecret(spec.Type, ref); err != nil {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Store: spec.Type, Secret: ref,
				Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
			return err
		}
	}
	return nil
}

// checkDestination applies the policy's destination rules to a connection about to be made with
// creds, whose fields came from the given secrets, and returns the destination it judged.
// Connectors without a network destination (SQLite) pass with hasDest false. A host and port
// that are not a destination the agent dials (a zone, a malformed port) are refused here too.
func (a *Activities) checkDestination(ctx context.Context, connector string, creds connectors.Credentials, origins []string) (dest netguard.Destination, hasDest bool, err error) {
	spec, ok := connectors.Lookup(connector)
	if !ok {
		return dest, false, nil
	}
	dest, hasDest, err = spec.Destination(creds)
	if err != nil || !hasDest {
		return dest, hasDest, err
	}
	return dest, true, a.destinationCheck(ctx, origins)(dest)
}

// destinationCheck returns the check a source's dialer applies to every destination it dials:
// the policy's destination rules for credentials from origins, each denial audited. Without a
// policy (tests) only Unix sockets are refused, as the default policy does.
func (a *Activities) destinationCheck(ctx context.Context, origins []string) netguard.DestinationCheck {
	return func(dest netguard.Destination) error {
		var err error
		switch {
		case a.Policy != nil:
			err = a.Policy.CheckDestination(dest, origins)
		case dest.Network != netguard.NetworkTCP:
			err = &secrets.Error{Kind: secrets.PolicyDenied, Msg: "Unix-socket destinations are refused unless a destinations rule names the socket's path exactly"}
		}
		if err != nil {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Secret: joinOrigins(origins), Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
		}
		return err
	}
}

// auditReads records one event per secret a resolution read, with the keys and fields it fed.
func (a *Activities) auditReads(ctx context.Context, store string, res *secrets.Resolution) {
	for _, v := range res.Versions {
		ev := audit.Event{Event: audit.SecretRead, Store: store, Secret: v.Ref.String(), Version: v.Version, Outcome: "ok"}
		for _, l := range res.Leases {
			if l.Ref == v.Ref {
				ev.LeaseID = l.Lease.ID
			}
		}
		for _, f := range res.Fields {
			if f.FromSecret && f.Ref == v.Ref {
				ev.Fields = append(ev.Fields, f.Field)
				if f.Key != "" && !slices.Contains(ev.Keys, f.Key) {
					ev.Keys = append(ev.Keys, f.Key)
				}
			}
		}
		a.audit(ctx, ev)
	}
}

// audit stamps the event with the activity's run and writes it.
func (a *Activities) audit(ctx context.Context, ev audit.Event) {
	if a.Audit == nil {
		return
	}
	info := activity.GetInfo(ctx)
	ev.WorkflowID, ev.RunID, ev.Activity = info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityType.Name
	if err := a.Audit.Record(ev); err != nil {
		a.logger().Error("writing the audit trail failed", "error", err)
	}
}

// PolicyOrigin names a secret the way the policy's destination rules do: its path, or for a
// custom store "<store_url host[:port]>/<secret_name>", so a rule cannot be matched by a
// secret of the same name on another store host.
func PolicyOrigin(spec *stores.Spec, ref secrets.Ref) string {
	if spec != nil && spec.Type == stores.TypeCustom {
		return spec.FieldPolicyRef(stores.SecretField{Secret: ref.Path})
	}
	return ref.Path
}

func storeType(spec *stores.Spec) string {
	if spec == nil {
		return ""
	}
	return spec.Type
}

func refString(ref *secrets.Ref) string {
	if ref == nil {
		return ""
	}
	return ref.String()
}

func joinOrigins(origins []string) string { return strings.Join(origins, ", ") }
