package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// The checklist, in the order a run meets each step.
const (
	checkInput      = "input valid"
	checkPolicy     = "policy allows"
	checkStore      = "secret store reachable"
	checkSecrets    = "secrets and keys resolved"
	checkSource     = "source reachable"
	checkAuth       = "authenticated"
	checkPrivileges = "catalog privileges"
	checkOutput     = "output writable"
)

var checkOrder = []string{checkInput, checkPolicy, checkStore, checkSecrets, checkSource, checkAuth, checkPrivileges, checkOutput}

// checkLine is one line of the checklist. Status is "ok", "failed" or "skipped" (a step after a
// failure). Detail names what was checked (names only, never values) or what to fix.
type checkLine struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// checklist is the result of `secure-agent check`.
type checklist struct {
	OK    bool        `json:"ok"`
	Lines []checkLine `json:"checks"`
}

// failedAt returns the checklist line a failure of this kind belongs to.
func failedAt(kind secrets.Kind) string {
	switch kind {
	case secrets.InvalidInput:
		return checkInput
	case secrets.PolicyDenied:
		return checkPolicy
	case secrets.StoreUnavailable, secrets.Throttled, secrets.AuthFailed:
		return checkStore
	case secrets.SecretNotFound, secrets.SecretKeyNotFound, secrets.AccessDenied, secrets.DecryptionFailed:
		return checkSecrets
	case secrets.SourceAuthFailed:
		return checkAuth
	}
	return checkSource
}

// sourceLine is the line a failure from the source itself belongs to: authentication, a policy
// refusal of the destination, or anything else about reaching it.
func sourceLine(kind secrets.Kind) string {
	switch kind {
	case secrets.SourceAuthFailed:
		return checkAuth
	case secrets.PolicyDenied:
		return checkPolicy
	}
	return checkSource
}

// build makes the checklist from where the check stopped (failure, or "" for none) and what
// each passed line found.
func build(failure string, failDetail string, details map[string]string, privileges []string, outputProblem string) checklist {
	c := checklist{OK: true}
	failed := false
	for _, name := range checkOrder {
		line := checkLine{Name: name, Status: "ok", Detail: details[name]}
		switch {
		case failed:
			line.Status, line.Detail = "skipped", ""
		case name == failure:
			line.Status, line.Detail, failed = "failed", failDetail, true
		case name == checkPrivileges && len(privileges) > 0:
			line.Status, line.Detail = "failed", "missing: "+strings.Join(privileges, ", ")+"; grant them to the connection's user"
		case name == checkOutput && outputProblem != "":
			line.Status, line.Detail = "failed", outputProblem
		}
		if line.Status == "failed" {
			c.OK = false
		}
		c.Lines = append(c.Lines, line)
	}
	return c
}

var checkHelp = helpText{
	usage: "secure-agent check --input FILE [--local] [--json] [--task-queue NAME]",
	about: "Check a connection step by step and print a checklist: input, policy, secret store, secrets and keys, " +
		"source, authentication, catalog privileges, output. By default a TestConnectionWorkflow runs on the agents " +
		"of the task queue (the TEMPORAL_* settings name the service); --local runs the same steps in this process " +
		"with this machine's agent settings. Exit codes: 0 all passed, 1 a step failed, 2 invalid input or flags.",
	settings: settingsOf(temporalSettings,
		agentSettings("TASK_QUEUE", "CODEC_KEYS", "CODEC_KEYS_FILE", "POLICY_FILE", "ALLOW_SENSITIVE_LITERALS"),
		[]setting{{"with --local:", "the agent settings the steps use"}},
		agentSettings("ENV_ALLOW", "CUSTOM_STORE_HOSTS", "CUSTOM_STORE_ENV_ALLOW", "CUSTOM_STORE_VERSION_PATHS",
			"CUSTOM_STORE_CA_FILES", "SQLITE_DIRS", "OUTPUT_DIR", "AWS_SESSION_NAME", "LOG_LEVEL", "LOG_FORMAT"),
		cloudSettings),
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check")
	inputPath := fs.String("input", "", "path of the workflow input JSON `FILE` (- for standard input)")
	local := fs.Bool("local", false, "run the steps in this process, with this machine's agent settings, instead of a TestConnectionWorkflow")
	asJSON := fs.Bool("json", false, "print the checklist as JSON on stdout, also when the input is invalid")
	taskQueue := fs.String("task-queue", "", "`NAME` of the task queue the agent polls (default: SECURE_AGENT_TASK_QUEUE, else secure-agent)")
	if err := parseFlags(fs, args, checkHelp, stdout, stderr); err != nil {
		return err
	}
	if *inputPath == "" {
		fmt.Fprintln(stderr, "secure-agent check: --input is required: the path of a workflow input JSON file (see examples/), or - for standard input")
		return exitError{2}
	}
	// Invalid input is refused before anything runs: nothing was started, no value reached any
	// history. The checklist says so on its first line (exit code 2, as for run).
	invalid := func(problems inputProblems) error {
		printChecklist(stdout, build(checkInput, strings.Join(problems, "; "), nil, nil, ""), *asJSON)
		return exitError{2}
	}
	in, err := readInput(*inputPath)
	var problems inputProblems
	if errors.As(err, &problems) {
		return invalid(problems)
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	if *taskQueue == "" {
		*taskQueue = settings.TaskQueue // the agent's own queue, as schedule create
	}
	var result checklist
	if problems := startProblems(settings, in); len(problems) > 0 {
		return invalid(problems)
	} else if *local {
		result = checkLocally(ctx, settings, in)
	} else {
		c, err := worker.Dial(ctx, settings, settings.NewLogger())
		if err != nil {
			return err
		}
		defer func() { _ = worker.Close(c) }()
		result, err = checkRemotely(ctx, c, *taskQueue, in)
		if err != nil {
			return err
		}
	}
	printChecklist(stdout, result, *asJSON)
	if !result.OK {
		return exitError{1}
	}
	return nil
}

// checkRemotely runs TestConnectionWorkflow on the agents of the task queue.
func checkRemotely(ctx context.Context, c client.Client, taskQueue string, in workflows.Input) (checklist, error) {
	id := fmt.Sprintf("check-%s-%s", in.Connector, time.Now().UTC().Format("20060102T150405.000"))
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, workflows.TestConnectionWorkflowName, in)
	if err != nil {
		return checklist{}, fmt.Errorf("starting the connection test: %w", err)
	}
	var rep workflows.ConnectionReport
	err = run.Get(ctx, &rep)
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ae):
		line, detail := failedAt(secrets.Kind(ae.Type())), ae.Message()
		var act *temporal.ActivityError
		if errors.As(err, &act) && act.ActivityType().GetName() == "Preflight" {
			// The source refused, after the secrets were resolved: not the input's or the store's
			// fault, unless a value meant as a variable name was used as text.
			line = sourceLine(secrets.Kind(ae.Type()))
			detail = withNotes(detail, remoteLiteralNotes(in, nil, false))
		}
		return build(line, detail, nil, nil, ""), nil
	case err != nil:
		return checklist{}, fmt.Errorf("the connection test did not finish: %w", err)
	}
	details := reportDetails(rep.Fields, rep.Versions, rep.ServerVersion)
	details[checkSecrets] = withNotes(details[checkSecrets], remoteLiteralNotes(in, rep.Versions, true))
	return build("", "", details, rep.MissingPrivileges, rep.OutputProblem), nil
}

// checkLocally runs the same steps in this process: policy, resolution, preflight, output.
func checkLocally(ctx context.Context, s worker.Settings, in workflows.Input) checklist {
	// notes explain, once the secrets are resolved, fields the env store took as literal text
	// although they look like variable names; every later failure carries them.
	var notes []string
	fail := func(err error) checklist {
		return build(failedAt(secrets.KindOf(err)), withNotes(err.Error(), notes), nil, nil, "")
	}
	failSource := func(err error) checklist {
		return build(sourceLine(secrets.KindOf(err)), withNotes(err.Error(), notes), nil, nil, "")
	}
	pol, err := s.Policy()
	if err != nil {
		return build(checkPolicy, err.Error(), nil, nil, "")
	}
	if spec := in.SecretStore; spec != nil {
		if err := pol.CheckStore(spec.Type); err != nil {
			return fail(err)
		}
		if ref := spec.PolicyRef(); ref != "" {
			if err := pol.CheckSecret(spec.Type, ref); err != nil {
				return fail(err)
			}
		}
	}
	opener, err := stores.NewOpener(worker.StoreOptions(s, pol))
	if err != nil {
		return build(checkPolicy, err.Error(), nil, nil, "")
	}
	defer opener.Close()
	src, ref, err := opener.Open(ctx, in.SecretStore)
	if err != nil {
		return fail(err)
	}
	spec, _ := connectors.Lookup(in.Connector)
	req := secrets.Request{Secret: ref, AllowSensitiveLiterals: pol.AllowSensitiveLiterals()}
	for name, v := range in.Connection {
		f, _ := spec.Field(name)
		req.Fields = append(req.Fields, secrets.Field{Name: name, Value: string(v), Sensitive: f.Sensitive})
	}
	res, err := secrets.NewResolver(secrets.ResolverOptions{}).Resolve(ctx, src, req)
	if err != nil {
		return fail(err)
	}
	defer res.Zero()
	notes, certain := localLiteralNotes(in, res, s.PolicyFile, envIsSet)
	if certain {
		// A variable of that name exists and was not read: the literal is a mistake, whatever
		// the later steps would say about it.
		return build(checkSecrets, strings.Join(notes, "; "), nil, nil, "")
	}
	creds := connectors.Credentials{}
	var origins []string
	for _, f := range res.Fields {
		creds[f.Field] = f.Value
		if f.FromSecret {
			origins = append(origins, activities.PolicyOrigin(in.SecretStore, f.Ref))
		}
	}
	dest, hasDest, err := spec.Destination(creds)
	if err != nil {
		return fail(err)
	}
	if hasDest {
		if err := pol.CheckDestination(dest, origins); err != nil {
			return fail(err)
		}
	}
	dirs, err := worker.ResolveSQLiteDirs(pol.SQLiteDirs())
	if err != nil {
		return build(checkPolicy, err.Error(), nil, nil, "")
	}
	opts := connectors.OpenOptions{
		Dialer:     &netguard.Dialer{Check: func(d netguard.Destination) error { return pol.CheckDestination(d, origins) }},
		SQLiteDirs: dirs,
	}
	if hasDest {
		opts.LegacyPasswordAuth = pol.LegacyPasswordAuth(dest)
	}
	source, err := worker.OpenSource(ctx, in.Connector, creds, opts)
	if err != nil {
		return failSource(err)
	}
	defer source.Close()
	report, err := source.Preflight(ctx)
	if err != nil {
		return failSource(err)
	}
	var outputProblem string
	if err := output.CheckWritable(output.PrefixDir(s.OutputDir, in.Output.Prefix)); err != nil {
		outputProblem = err.Error()
	}
	details := reportDetails(res.FieldNames(), res.Versions, report.ServerVersion)
	details[checkSecrets] = withNotes(details[checkSecrets], notes)
	return build("", "", details, report.MissingPrivileges, outputProblem)
}

// reportDetails names what the passed lines found: field names and secret versions, the server.
func reportDetails(fields []string, versions []secrets.SecretVersion, server string) map[string]string {
	var secretNames []string
	for _, v := range versions {
		secretNames = append(secretNames, v.Ref.String())
	}
	d := map[string]string{
		checkSecrets: "fields " + strings.Join(fields, ", "),
		checkSource:  server,
	}
	if len(secretNames) > 0 {
		d[checkSecrets] += " from " + strings.Join(secretNames, ", ")
	}
	return d
}

func printChecklist(w io.Writer, c checklist, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c)
		return
	}
	marks := map[string]string{"ok": "[ok]  ", "failed": "[FAIL]", "skipped": "[--]  "}
	for _, l := range c.Lines {
		line := fmt.Sprintf("%s %s", marks[l.Status], l.Name)
		if l.Detail != "" {
			line += ": " + l.Detail
		}
		fmt.Fprintln(w, line)
	}
}
