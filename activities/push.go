package activities

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/output/push"
	"github.com/secure-agent/secure-agent/secrets"
)

// PushFields are the fields of each catalog push target (output.push.<target>), resolved like
// connection fields from the run's secret store and kept in the lease as
// SinkFieldPrefix+"push."+target+"."+field: the endpoint's base URL, and its token.
var PushFields = map[string][]connectors.FieldSpec{
	output.FormatOpenLineage: {
		{Name: "url", Required: true, Doc: "the OpenLineage endpoint's base URL (events go to <url>/api/v1/lineage), such as https://marquez.internal:5000"},
		{Name: "apiKey", Sensitive: true, Doc: "the API key, sent as a bearer token (a key of the secret)"},
	},
	output.FormatDataHub: {
		{Name: "url", Required: true, Doc: "DataHub GMS's base URL (proposals go to <url>/aspects?action=ingestProposal), such as https://datahub-gms.internal:8080"},
		{Name: "token", Sensitive: true, Doc: "a DataHub access token, sent as a bearer token (a key of the secret)"},
	},
}

// pushField is the lease field name of a push target's field.
func pushField(target, field string) string { return SinkFieldPrefix + "push." + target + "." + field }

// isPushField reports whether a lease field belongs to a catalog push.
func isPushField(f string) bool { return strings.HasPrefix(f, SinkFieldPrefix+"push.") }

// PushInput is the input of PushCatalog: the lease (for the targets' fields), the run's output
// prefix and source label, and the targets to push to, in order.
type PushInput struct {
	LeaseInput
	Prefix  string   `json:"prefix,omitempty"`
	Source  string   `json:"source"`
	Targets []string `json:"targets"`
}

// PushResult counts what each target was sent and what it already had.
type PushResult struct {
	Targets map[string]push.Result `json:"targets"`
}

// PushCatalog sends the run's catalog formats (written by Finalize on this worker) to the
// catalogs output.push names: the OpenLineage events to an OpenLineage endpoint, the DataHub
// proposals to GMS, each with its token from the lease as a bearer token. It reads only the push
// fields of the lease, never the source's or the s3 output's.
//
// The endpoint is judged before anything is sent: by outputs.catalogs in the policy whatever the
// token, and, when the URL or the token came from a secret, by that secret's destination rules;
// every connection is judged again when dialled, and a redirect is not followed. A token goes
// only over https, or over http to a loopback address (a catalog on the agent's own host). What an
// endpoint was sent is kept in a ledger on the agent's disk, per endpoint and source (see
// output.ReadPushed): a record already sent with the same content is skipped, so a retry, or a
// re-run of an unchanged catalog, sends nothing twice. The ledger is saved as the push goes, at
// every heartbeat.
func (a *Activities) PushCatalog(ctx context.Context, in PushInput) (*PushResult, error) {
	info := activity.GetInfo(ctx)
	if err := checkPrefix(in.Prefix); err != nil {
		return nil, appError(err, true)
	}
	if _, ok := connectors.Lookup(in.Connector); !ok {
		return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", in.Connector)}, true)
	}
	dir := a.runDir(ctx, in.Connector, in.Prefix)
	m, err := output.ReadManifest(dir)
	if err != nil {
		return nil, appError(fmt.Errorf("the run's output is not on this worker's disk: %w", err), true)
	}
	res := &PushResult{Targets: map[string]push.Result{}}
	for _, target := range in.Targets {
		fields, ok := PushFields[target]
		if !ok {
			return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("output.push: %q is not a catalog the agent pushes to: use %s", target, strings.Join(output.Formats, " or "))}, true)
		}
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = pushField(target, f.Name)
		}
		r, err := a.pushTarget(ctx, in, dir, m, target, names)
		if err != nil {
			return nil, err
		}
		res.Targets[target] = r
		a.logger().Info("catalog pushed", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID,
			"catalog", target, "sent", r.Sent, "skipped", r.Skipped)
	}
	return res, nil
}

// pushTarget pushes one format file to its endpoint.
func (a *Activities) pushTarget(ctx context.Context, in PushInput, dir string, m *output.Manifest, target string, fieldNames []string) (push.Result, error) {
	info := activity.GetInfo(ctx)
	creds, origins, _, err := a.Leases.GetWithOrigins(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, in.Connector, fieldNames)
	if err != nil {
		return push.Result{}, appError(err, true)
	}
	defer zeroCreds(creds)
	catalog := map[string]string{output.FormatOpenLineage: "OpenLineage", output.FormatDataHub: "DataHub"}[target]
	tokenField := fieldNames[1]
	ep, dest, err := pushEndpoint(catalog, target, creds[fieldNames[0]].Reveal(), creds[tokenField].Reveal())
	if err != nil {
		return push.Result{}, appError(err, true)
	}
	check := a.catalogCheck(ctx, dest, origins)
	if err := check(dest); err != nil {
		return push.Result{}, appError(err, true)
	}
	var file string
	for _, f := range m.Formats {
		if f.Entity == target {
			file = filepath.Join(dir, f.Name)
		}
	}
	if file == "" {
		return push.Result{}, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("the run wrote no %s file to push", catalog)}, true)
	}
	records, err := readRecords(file, target)
	if err != nil {
		return push.Result{}, appError(err, true)
	}
	key := pushLedgerKey(target, ep.URL.String(), in.Connector, in.Source)
	sent, err := output.ReadPushed(a.OutputRoot, in.Prefix, in.Connector, key)
	if err != nil {
		return push.Result{}, appError(err, false)
	}
	ledger := push.NewLedger(sent)
	client := pushClient(check)
	defer client.CloseIdleConnections()

	// Heartbeat the counts and save the ledger as the push goes.
	var mu sync.Mutex
	var counts push.Result
	stop := make(chan struct{})
	done := make(chan struct{})
	save := func() error { return output.WritePushed(a.OutputRoot, in.Prefix, in.Connector, key, ledger.Snapshot()) }
	go func() {
		defer close(done)
		t := time.NewTicker(a.heartbeatEvery())
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				c := counts
				mu.Unlock()
				_ = save()
				activity.RecordHeartbeat(ctx, map[string]any{"catalog": target, "sent": c.Sent, "skipped": c.Skipped})
			}
		}
	}()
	r, err := push.Send(ctx, client, ep, records, ledger, push.Options{Progress: func(s, k int) {
		mu.Lock()
		counts = push.Result{Sent: s, Skipped: k}
		mu.Unlock()
	}})
	close(stop)
	<-done
	if serr := save(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return r, pushError(err)
	}
	return r, nil
}

// pushError classifies a failed push: final when the endpoint refused (the token: AccessDenied;
// a record: InvalidInput), retried otherwise (OutputUnavailable), the ledger keeping a retry
// from sending again what was sent. Push errors hold no URL, token or response body.
func pushError(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, push.ErrUnauthorized):
		return appError(&secrets.Error{Kind: secrets.AccessDenied, Msg: err.Error()}, true)
	case errors.Is(err, push.ErrRefused):
		return appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: err.Error()}, true)
	}
	return appError(&secrets.Error{Kind: secrets.OutputUnavailable, Msg: err.Error()}, true)
}

// pushEndpoint builds the endpoint of a target from its URL and token (as read from the lease).
// Errors never repeat the URL, which may come from a secret.
func pushEndpoint(catalog, target, rawURL, token string) (push.Endpoint, netguard.Destination, error) {
	bad := func(why string) (push.Endpoint, netguard.Destination, error) {
		return push.Endpoint{}, netguard.Destination{}, &secrets.Error{Kind: secrets.InvalidInput, Field: "output.push." + target + ".url", Msg: why}
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return bad("is not an absolute http or https URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("must be an http or https URL")
	case u.User != nil:
		return bad("must not hold a user or password: give the token in its own field")
	case u.RawQuery != "" || u.Fragment != "":
		return bad("must be the catalog's base URL, without a query or fragment")
	}
	dest, err := netguard.DestinationOfURL(u)
	if err != nil {
		return bad("does not name a host and port the agent can reach")
	}
	if u.Scheme == "http" && token != "" && !loopback(u.Hostname()) {
		return bad("must be https when a token is set (a bearer token over plain http can be read on the way); plain http is accepted only to a loopback address")
	}
	base := strings.TrimSuffix(u.String(), "/")
	var full string
	switch target {
	case output.FormatOpenLineage:
		full = base + "/api/v1/lineage"
	default:
		full = base + "/aspects?action=ingestProposal"
	}
	fu, err := url.Parse(full)
	if err != nil {
		return bad("cannot be extended with the catalog's API path")
	}
	return push.Endpoint{Catalog: catalog, URL: fu, Token: token}, dest, nil
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// catalogCheck judges a push destination: the endpoint itself (no redirect elsewhere), the
// policy's outputs.catalogs, and the destination rules of the secrets the URL and token came
// from. A denial is audited.
func (a *Activities) catalogCheck(ctx context.Context, endpoint netguard.Destination, origins []string) netguard.DestinationCheck {
	return func(d netguard.Destination) error {
		var err error
		switch {
		case d != endpoint:
			err = &secrets.Error{Kind: secrets.PolicyDenied, Msg: "the catalog push tried to reach a host other than its endpoint; refused"}
		case a.Policy != nil:
			if err = a.Policy.CheckCatalog(endpoint); err == nil && len(origins) > 0 {
				err = a.Policy.CheckDestination(endpoint, origins)
			}
		}
		if err != nil {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Secret: joinOrigins(origins), Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
		}
		return err
	}
}

// pushClient is the HTTP client of a push: every request and dial judged by check, no redirect
// followed, bounded waits.
func pushClient(check netguard.DestinationCheck) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	netguard.GuardTransport(tr, &netguard.Dialer{Check: check})
	return &http.Client{
		Transport:     tr,
		Timeout:       2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// pushLedgerKey names the ledger of one endpoint and source: the format, the endpoint's URL, the
// connector and the source label, hashed (the URL may come from a secret; the file name shows
// none of it).
func pushLedgerKey(target, endpoint, connector, source string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"push-v1", target, endpoint, connector, source}, "\n")))
	return hex.EncodeToString(sum[:])
}

// readRecords reads a format file as push records.
func readRecords(file, target string) ([]push.Record, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Base(file), err)
	}
	if target == output.FormatOpenLineage {
		var lines [][]byte
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return push.OpenLineageRecords(lines)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return nil, fmt.Errorf("datahub.json is not a JSON array: %w", err)
	}
	raw := make([][]byte, len(elems))
	for i, e := range elems {
		raw[i] = e
	}
	return push.DataHubRecords(raw)
}
