//go:build !noserver

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// scheduleEnv is a real Temporal server (the embedded dev server, whose worker service runs
// schedules) with the agent polling a task queue, the environment the schedule commands read,
// and a SQLite source the agent may open.
type scheduleEnv struct {
	d         *devEnv
	taskQueue string
	input     string // a valid input file
	canary    string // the input's connection value (an env variable's name): never shown in plain text
	source    string // the input's source label
}

// newScheduleEnv starts the environment; codecKeys (may be empty) are set for the agent and the
// commands alike.
func newScheduleEnv(t *testing.T, codecKeys string) *scheduleEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbDir := t.TempDir()
	db := filepath.Join(dbDir, "shop.db")
	if err := writeSampleDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	nonce := time.Now().UnixNano()
	e := &scheduleEnv{taskQueue: "schedule-test", canary: fmt.Sprintf("SCHED_TEST_DB_CANARY_%d", nonce), source: fmt.Sprintf("shop-label-%d", nonce)}
	t.Setenv(e.canary, db)
	for k, v := range map[string]string{
		"SECURE_AGENT_ENV_ALLOW": "SCHED_TEST_*", "SECURE_AGENT_SQLITE_DIRS": dbDir, "SECURE_AGENT_OUTPUT_DIR": t.TempDir(),
		"SECURE_AGENT_TASK_QUEUE": e.taskQueue, "SECURE_AGENT_AUDIT": "off", "SECURE_AGENT_LOG_LEVEL": "error",
		"SECURE_AGENT_CODEC_KEYS": codecKeys, "SECURE_AGENT_CODEC_KEYS_FILE": "", "SECURE_AGENT_POLICY_FILE": "",
		"SECURE_AGENT_ALLOW_SENSITIVE_LITERALS": "false", "TEMPORAL_CONFIG_FILE": "", "TEMPORAL_PROFILE": "", "TEMPORAL_API_KEY": "",
	} {
		t.Setenv(k, v)
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	e.d, err = startDev(ctx, portZeroConfig(t), settings, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.d.stop)
	t.Setenv("TEMPORAL_ADDRESS", e.d.server.FrontendAddress())
	t.Setenv("TEMPORAL_NAMESPACE", e.d.server.Namespace())
	e.input = writeInput(t, map[string]any{"connector": "sqlite", "connection": map[string]any{"path": e.canary},
		"secretStore": map[string]any{"type": "env"}, "source": e.source})
	return e
}

func writeInput(t *testing.T, v any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.json")
	b, _ := json.Marshal(v)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sa runs `secure-agent args...` in process.
func sa(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	code = mainWith(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// describe reads a schedule through the SDK's own handle (the agent's client, which decrypts),
// independently of the command's printing.
func (e *scheduleEnv) describe(t *testing.T, id string) (*client.ScheduleDescription, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.d.client.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
}

// rawDescribe reads a schedule as stored, with no data converter or codec in the way.
func (e *scheduleEnv) rawDescribe(t *testing.T, id string) *workflowservice.DescribeScheduleResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plain, err := client.DialContext(ctx, client.Options{HostPort: e.d.server.FrontendAddress(), Namespace: e.d.server.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	resp, err := plain.WorkflowService().DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: e.d.server.Namespace(), ScheduleId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitForRun waits until the schedule has taken n actions, then for the n-th run to end, and
// returns its workflow id and summary.
func (e *scheduleEnv) waitForRun(t *testing.T, id string, n int) (string, workflows.Summary) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := e.describe(t, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Info.RecentActions) >= n {
			r := d.Info.RecentActions[n-1].StartWorkflowResult
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var sum workflows.Summary
			if err := e.d.client.GetWorkflow(ctx, r.WorkflowID, r.FirstExecutionRunID).Get(ctx, &sum); err != nil {
				t.Fatalf("the scheduled run %s failed: %v", r.WorkflowID, err)
			}
			return r.WorkflowID, sum
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule %s took %d actions, want %d", id, len(d.Info.RecentActions), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertAbsent fails unless the schedule does not exist.
func (e *scheduleEnv) assertAbsent(t *testing.T, id string) {
	t.Helper()
	_, err := e.describe(t, id)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("schedule %s: describe returned %v, want NotFound", id, err)
	}
}

// TestScheduleLifecycle: create stores the spec and policies as given, trigger starts an
// extraction that completes with the sample's counts, describe and list show it without the
// input's connection value, pause and unpause change the state, delete removes it.
func TestScheduleLifecycle(t *testing.T) {
	e := newScheduleEnv(t, "")

	code, out, errOut := sa(t, "schedule", "create", "--id", "nightly", "--input", e.input, "--cron", "0 2 * * *",
		"--overlap", "buffer-one", "--catchup-window", "1h", "--jitter", "10m", "--note", "catalog refresh", "--workflow-id-prefix", "nightly-shop")
	if code != 0 || !strings.Contains(out, "created schedule nightly") {
		t.Fatalf("create exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	d, err := e.describe(t, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE || d.Schedule.Policy.CatchupWindow != time.Hour ||
		d.Schedule.Spec.Jitter != 10*time.Minute || d.Schedule.State.Note != "catalog refresh" || d.Schedule.State.Paused {
		t.Fatalf("stored policies %+v, jitter %s, state %+v", d.Schedule.Policy, d.Schedule.Spec.Jitter, d.Schedule.State)
	}
	if cal := d.Schedule.Spec.Calendars; len(cal) != 1 || calendarCron(cal[0]) != "0 2 * * *" {
		t.Fatalf("stored calendars %+v", cal)
	}
	if next := d.Info.NextActionTimes; len(next) == 0 || next[0].UTC().Hour() != 2 || next[0].UTC().Minute() > 10 {
		t.Fatalf("next runs %v: want 02:00 UTC plus at most 10m of jitter", next)
	}
	a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != workflows.ExtractionWorkflowName || a.TaskQueue != e.taskQueue || a.ID != "nightly-shop" ||
		!strings.Contains(a.StaticSummary, "sqlite extraction of "+e.source) || strings.Contains(a.StaticSummary+a.StaticDetails, e.canary) {
		t.Fatalf("stored action %+v", d.Schedule.Action)
	}
	// Without codec keys the input is stored as plain JSON (the codec test checks the contrast).
	raw := e.rawDescribe(t, "nightly").GetSchedule().GetAction().GetStartWorkflow().GetInput().GetPayloads()
	if len(raw) != 1 || string(raw[0].GetMetadata()["encoding"]) != "json/plain" {
		t.Fatalf("stored input %v", raw)
	}

	// --every with an offset, and --paused; the default overlap is skip.
	if code, out, errOut := sa(t, "schedule", "create", "--id", "hourly", "--input", e.input, "--every", "1h", "--offset", "5m", "--paused"); code != 0 {
		t.Fatalf("create --every exited %d: %s %s", code, out, errOut)
	}
	h, err := e.describe(t, "hourly")
	if err != nil {
		t.Fatal(err)
	}
	if iv := h.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != time.Hour || iv[0].Offset != 5*time.Minute ||
		!h.Schedule.State.Paused || h.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP ||
		h.Schedule.Policy.CatchupWindow != 365*24*time.Hour { // the service's default, as --help says
		t.Fatalf("hourly: intervals %+v, state %+v, policy %+v", h.Schedule.Spec.Intervals, h.Schedule.State, h.Schedule.Policy)
	}
	if code, _, errOut := sa(t, "schedule", "create", "--id", "hourly", "--input", e.input, "--every", "1h"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("creating an existing id: exit %d, %s", code, errOut)
	}

	// trigger: the scheduled run is a real extraction with the sample's counts.
	if code, out, errOut := sa(t, "schedule", "trigger", "--id", "nightly"); code != 0 || !strings.Contains(out, "triggered schedule nightly") {
		t.Fatalf("trigger exited %d: %s %s", code, out, errOut)
	}
	wid, sum := e.waitForRun(t, "nightly", 1)
	if !strings.HasPrefix(wid, "nightly-shop-") || sum.Counts["tables"] != 7 {
		t.Fatalf("run %s: counts %v", wid, sum.Counts)
	}

	// describe: the run, its status and counts, the policies as stored; no connection value.
	code, out, errOut = sa(t, "schedule", "describe", "--id", "nightly")
	if code != 0 {
		t.Fatalf("describe exited %d: %s", code, errOut)
	}
	for _, want := range []string{wid, "Completed", "tables=7", "cron 0 2 * * * UTC", "buffer-one", "1h0m0s", "10m0s",
		"sqlite, source " + e.source, "catalog refresh", "json/plain", "1 taken"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, e.canary) {
		t.Fatalf("describe printed the input's connection value:\n%s", out)
	}
	code, out, _ = sa(t, "schedule", "describe", "--id", "nightly", "--json")
	var v scheduleView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("describe --json exited %d: %v\n%s", code, err, out)
	}
	if v.Connector != "sqlite" || v.Source != e.source || v.Overlap != "buffer-one" || v.CatchupWindow != "1h0m0s" || v.Jitter != "10m0s" ||
		len(v.RecentActions) != 1 || v.RecentActions[0].WorkflowID != wid || v.RecentActions[0].Status != "Completed" ||
		v.RecentActions[0].Counts["tables"] != 7 || len(v.NextRuns) == 0 || strings.Contains(out, e.canary) {
		t.Fatalf("describe --json: %s", out)
	}

	// list: both schedules (the visibility store may lag a moment), paused or not.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut = sa(t, "schedule", "list", "--json")
		var entries []scheduleListEntry
		if code != 0 || json.Unmarshal([]byte(out), &entries) != nil {
			t.Fatalf("list --json exited %d: %s %s", code, out, errOut)
		}
		got := map[string]scheduleListEntry{}
		for _, en := range entries {
			got[en.ID] = en
		}
		if n, hr := got["nightly"], got["hourly"]; n.ID != "" && hr.ID != "" {
			if n.Paused || !hr.Paused || n.Spec != "cron 0 2 * * * UTC, jitter 10m0s" || hr.Spec != "every 1h0m0s offset 5m0s" || n.NextRun == nil {
				t.Fatalf("list: %+v", entries)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list does not show both schedules: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code, out, _ := sa(t, "schedule", "list"); code != 0 || !strings.Contains(out, "nightly") || !strings.Contains(out, "NEXT RUN") {
		t.Fatalf("list exited %d:\n%s", code, out)
	}

	// pause and unpause.
	if code, _, errOut := sa(t, "schedule", "pause", "--id", "nightly", "--note", "maintenance"); code != 0 {
		t.Fatalf("pause exited %d: %s", code, errOut)
	}
	if d, err := e.describe(t, "nightly"); err != nil || !d.Schedule.State.Paused || d.Schedule.State.Note != "maintenance" {
		t.Fatalf("after pause: %v %+v", err, d.Schedule.State)
	}
	if code, _, errOut := sa(t, "schedule", "unpause", "--id", "nightly"); code != 0 {
		t.Fatalf("unpause exited %d: %s", code, errOut)
	}
	if d, err := e.describe(t, "nightly"); err != nil || d.Schedule.State.Paused {
		t.Fatalf("after unpause: %v %+v", err, d.Schedule.State)
	}

	// delete; then the schedule is gone and the commands say so.
	for _, id := range []string{"nightly", "hourly"} {
		if code, out, errOut := sa(t, "schedule", "delete", "--id", id); code != 0 || !strings.Contains(out, "deleted schedule "+id) {
			t.Fatalf("delete %s exited %d: %s %s", id, code, out, errOut)
		}
		e.assertAbsent(t, id)
	}
	if code, _, errOut := sa(t, "schedule", "describe", "--id", "nightly"); code != 1 || !strings.Contains(errOut, `describing schedule "nightly": no such schedule`) {
		t.Fatalf("describing a deleted schedule: exit %d, %s", code, errOut)
	}
	if code, _, errOut := sa(t, "schedule", "trigger", "--id", "nightly"); code != 1 || !strings.Contains(errOut, "no such schedule") {
		t.Fatalf("triggering a deleted schedule: exit %d, %s", code, errOut)
	}
}

// TestScheduleCreateRefusesBadFlagsAndInput: every bad flag and every input run refuses exits 2
// with what is wrong, and nothing is created on the real server.
func TestScheduleCreateRefusesBadFlagsAndInput(t *testing.T) {
	e := newScheduleEnv(t, "")
	literal := writeInput(t, map[string]any{"connector": "postgres", "connection": map[string]any{
		"host": "db.example", "user": "u", "database": "d", "password": "literal-password-canary"}})
	unknown := writeInput(t, map[string]any{"connector": "sqlite", "connection": map[string]any{"path": e.canary},
		"secretStore": map[string]any{"type": "env"}, "schedule": "nightly"})
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"cron with too few fields", []string{"--cron", "every night"}, []string{"has 2 fields", "0 2 * * *"}},
		{"cron value out of range", []string{"--cron", "61 2 * * *"}, []string{"refused the schedule", "Minute"}},
		{"unknown shorthand", []string{"--cron", "@nightly"}, []string{"not a known shorthand", "@daily"}},
		{"cron and every", []string{"--cron", "0 2 * * *", "--every", "24h"}, []string{"both set"}},
		{"no time", nil, []string{"--cron", "--every"}},
		{"bad overlap", []string{"--every", "24h", "--overlap", "sometimes"}, []string{`"sometimes" is not a policy`, "skip, buffer-one, buffer-all, cancel-other, terminate-other, allow-all"}},
		{"negative jitter", []string{"--every", "24h", "--jitter", "-5m"}, []string{"--jitter -5m0s is negative"}},
		{"jitter not a duration", []string{"--every", "24h", "--jitter", "soon"}, []string{`--jitter "soon" is not a duration`}},
		{"catch-up window too short", []string{"--every", "24h", "--catchup-window", "5s"}, []string{"minimum of 10s"}},
		{"offset not shorter", []string{"--every", "1h", "--offset", "2h"}, []string{"--offset 2h0m0s is not shorter"}},
		{"every too short", []string{"--every", "500ms"}, []string{"--every 500ms is too short"}},
		{"offset with cron", []string{"--cron", "0 2 * * *", "--offset", "5m"}, []string{"--offset applies to --every only"}},
		{"bad id", []string{"--id", "has space", "--every", "24h"}, []string{`--id "has space" is not a schedule id`}},
		{"sensitive literal", []string{"--every", "24h", "--input", literal}, []string{"connection.password is sensitive"}},
		{"unknown input field", []string{"--every", "24h", "--input", unknown}, []string{`unknown field "schedule"`}},
		{"missing input file", []string{"--every", "24h", "--input", filepath.Join(t.TempDir(), "nope.json")}, []string{"does not exist"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("bad-%d", i)
			args := append([]string{"schedule", "create", "--id", id, "--input", e.input}, c.args...)
			code, out, errOut := sa(t, args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(errOut, "nothing was created") || strings.Contains(errOut, "literal-password-canary") {
				t.Errorf("stderr:\n%s", errOut)
			}
			e.assertAbsent(t, id)
		})
	}
	if code, out, _ := sa(t, "schedule", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after refused creates, list --json exited %d: %s", code, out)
	}
	if code, _, errOut := sa(t, "schedule", "trigger", "--id", "x", "--overlap", "often"); code != 2 || !strings.Contains(errOut, "allow-all") {
		t.Fatalf("trigger --overlap often: exit %d, %s", code, errOut)
	}
	if code, _, errOut := sa(t, "schedule", "describe"); code != 2 || !strings.Contains(errOut, "--id is required") {
		t.Fatalf("describe without --id: exit %d, %s", code, errOut)
	}
}

// TestScheduleInputEncryptedByCodec: with codec keys set, the schedule's stored input, read as
// stored without the codec, is encrypted and holds neither the input's connection value nor its
// source label; the triggered run still completes, and describe decrypts the connector.
func TestScheduleInputEncryptedByCodec(t *testing.T) {
	keys := "sched:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	e := newScheduleEnv(t, keys)
	if code, out, errOut := sa(t, "schedule", "create", "--id", "sealed", "--input", e.input, "--every", "24h", "--offset", "3h"); code != 0 {
		t.Fatalf("create exited %d: %s %s", code, out, errOut)
	}
	raw := e.rawDescribe(t, "sealed")
	start := raw.GetSchedule().GetAction().GetStartWorkflow()
	input := start.GetInput().GetPayloads()
	if len(input) != 1 || string(input[0].GetMetadata()["encoding"]) != codec.EncodingEncrypted {
		t.Fatalf("stored input %v, want encoding %s", input, codec.EncodingEncrypted)
	}
	if s := start.GetUserMetadata().GetSummary(); string(s.GetMetadata()["encoding"]) != codec.EncodingEncrypted {
		t.Fatalf("stored summary encoding %q", s.GetMetadata()["encoding"])
	}
	wire, err := proto.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, canary := range []string{e.canary, e.source} {
		if bytes.Contains(wire, []byte(canary)) {
			t.Fatalf("the stored schedule holds %q in plain text", canary)
		}
	}

	if code, _, errOut := sa(t, "schedule", "trigger", "--id", "sealed"); code != 0 {
		t.Fatalf("trigger exited %d: %s", code, errOut)
	}
	wid, sum := e.waitForRun(t, "sealed", 1)
	if sum.Counts["tables"] != 7 {
		t.Fatalf("run %s: counts %v", wid, sum.Counts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hist := e.d.client.GetWorkflowHistory(ctx, wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := hist.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads(); len(p) != 1 || string(p[0].GetMetadata()["encoding"]) != codec.EncodingEncrypted {
		t.Fatalf("the scheduled run's input is stored as %v", p)
	}

	code, out, errOut := sa(t, "schedule", "describe", "--id", "sealed", "--json")
	var v scheduleView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("describe --json exited %d (%v): %s %s", code, err, out, errOut)
	}
	if v.Connector != "sqlite" || v.Source != e.source || v.InputEncoding != codec.EncodingEncrypted || len(v.RecentActions) != 1 ||
		v.RecentActions[0].Counts["tables"] != 7 || strings.Contains(out, e.canary) {
		t.Fatalf("describe --json: %s", out)
	}
	// Without the keys, describe says what is missing instead of showing anything of the input.
	t.Setenv("SECURE_AGENT_CODEC_KEYS", "")
	code, out, errOut = sa(t, "schedule", "describe", "--id", "sealed")
	if code != 1 || !strings.Contains(errOut, "SECURE_AGENT_CODEC_KEYS") || strings.Contains(out+errOut, e.source) {
		t.Fatalf("describe without keys: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestScheduleHelp: every subcommand's --help exits 0 and lists its flags and the settings it
// reads; schedule alone lists the subcommands.
func TestScheduleHelp(t *testing.T) {
	flags := map[string][]string{
		"create":   {"--id", "--input", "--cron", "--every", "--offset", "--overlap", "--catchup-window", "--jitter", "--paused", "--note", "--task-queue", "--workflow-id-prefix", "--pause-on-failure", "SECURE_AGENT_TASK_QUEUE", "SECURE_AGENT_POLICY_FILE"},
		"list":     {"--all", "--json"},
		"describe": {"--id", "--json"},
		"trigger":  {"--id", "--overlap"},
		"pause":    {"--id", "--note"},
		"unpause":  {"--id", "--note"},
		"delete":   {"--id"},
	}
	for _, c := range scheduleCommands() {
		code, out, errOut := sa(t, "schedule", c.name, "--help")
		if code != 0 {
			t.Errorf("schedule %s --help exited %d: %s", c.name, code, errOut)
		}
		for _, want := range append(flags[c.name], "TEMPORAL_ADDRESS", "SECURE_AGENT_CODEC_KEYS", "usage: secure-agent schedule "+c.name) {
			if !strings.Contains(out, want) {
				t.Errorf("schedule %s --help does not list %s:\n%s", c.name, want, out)
			}
		}
	}
	if code, out, _ := sa(t, "schedule", "--help"); code != 0 || !strings.Contains(out, "trigger") {
		t.Errorf("schedule --help: %d %s", code, out)
	}
	if code, _, errOut := sa(t, "schedule"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("schedule: %d %s", code, errOut)
	}
	if code, _, errOut := sa(t, "schedule", "frob"); code != 2 || !strings.Contains(errOut, `unknown subcommand "frob"`) {
		t.Errorf("schedule frob: %d %s", code, errOut)
	}
}

// TestSpecText: a stored calendar reads back as the cron fields it was made from.
func TestSpecText(t *testing.T) {
	all := func(lo, hi int) []client.ScheduleRange { return []client.ScheduleRange{{Start: lo, End: hi}} }
	one := func(v int) []client.ScheduleRange { return []client.ScheduleRange{{Start: v}} }
	spec := &client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
		Second: one(0), Minute: []client.ScheduleRange{{Start: 0, End: 59, Step: 15}}, Hour: []client.ScheduleRange{{Start: 1, End: 5}, {Start: 22}},
		DayOfMonth: all(1, 31), Month: all(1, 12), DayOfWeek: all(1, 5),
	}}, TimeZoneName: "Europe/Paris"}
	if got, want := specText(spec), "cron */15 1-5,22 * * 1-5 Europe/Paris"; got != want {
		t.Fatalf("specText = %q, want %q", got, want)
	}
}

// TestTemporalCLIScheduleRecipe: the documented `temporal schedule create` recipe, with the real
// temporal CLI and the codec server, stores the input encrypted, its triggered run completes on
// the agent, and `secure-agent schedule describe` reads the schedule the CLI made.
func TestTemporalCLIScheduleRecipe(t *testing.T) {
	cli := testenv.TemporalCLI(t)
	keySpec := "cli:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	keys, err := codec.ParseKeys(keySpec)
	if err != nil {
		t.Fatal(err)
	}
	codecServer := httptest.NewServer(codec.NewServer(keys, codec.ServerOptions{Token: "recipe-token"}))
	defer codecServer.Close()
	e := newScheduleEnv(t, keySpec)
	temporal := func(args ...string) string {
		t.Helper()
		args = append(args, "--address", e.d.server.FrontendAddress(), "--namespace", e.d.server.Namespace(),
			"--codec-endpoint", codecServer.URL, "--codec-auth", "Bearer recipe-token")
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	temporal("schedule", "create", "--schedule-id", "cli-nightly", "--cron", "0 2 * * *",
		"--workflow-id", "cli-nightly", "--task-queue", e.taskQueue, "--type", workflows.ExtractionWorkflowName,
		"--input-file", e.input, "--overlap-policy", "Skip", "--catchup-window", "1h", "--jitter", "10m",
		"--static-summary", "sqlite extraction (schedule cli-nightly)")

	d, err := e.describe(t, "cli-nightly")
	if err != nil {
		t.Fatal(err)
	}
	if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || d.Schedule.Policy.CatchupWindow != time.Hour || d.Schedule.Spec.Jitter != 10*time.Minute {
		t.Fatalf("the CLI stored policies %+v, jitter %s", d.Schedule.Policy, d.Schedule.Spec.Jitter)
	}
	raw := e.rawDescribe(t, "cli-nightly").GetSchedule().GetAction().GetStartWorkflow().GetInput().GetPayloads()
	if len(raw) != 1 || string(raw[0].GetMetadata()["encoding"]) != codec.EncodingEncrypted || bytes.Contains(raw[0].GetData(), []byte(e.canary)) {
		t.Fatalf("the CLI stored the input as %v, not encrypted", raw)
	}

	temporal("schedule", "trigger", "--schedule-id", "cli-nightly")
	if _, sum := e.waitForRun(t, "cli-nightly", 1); sum.Counts["tables"] != 7 {
		t.Fatalf("counts %v", sum.Counts)
	}
	code, out, errOut := sa(t, "schedule", "describe", "--id", "cli-nightly")
	if code != 0 || !strings.Contains(out, "sqlite, source "+e.source) || !strings.Contains(out, "Completed") || !strings.Contains(out, "tables=7") {
		t.Fatalf("describe of the CLI's schedule exited %d:\n%s%s", code, out, errOut)
	}
	temporal("schedule", "delete", "--schedule-id", "cli-nightly")
	e.assertAbsent(t, "cli-nightly")
}
