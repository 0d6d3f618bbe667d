package codec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/codec/oidctest"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

type echoInput struct {
	Connector string `json:"connector"`
	Password  string `json:"password"`
}

func echoWorkflow(_ workflow.Context, in echoInput) (string, error) {
	return "connected to " + in.Connector + " as " + in.Password, nil
}

func loginActivity(_ context.Context, in echoInput) error {
	return temporal.NewNonRetryableApplicationError("login refused for password "+in.Password, "SourceAuthFailed", nil)
}

func failingWorkflow(ctx workflow.Context, in echoInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteActivity(ctx, "Login", in).Get(ctx, nil)
}

// TestTemporalCLIWithCodecServer runs workflows on a real in-process Temporal server with the
// codec, then reads their histories with the real temporal CLI, with and without the codec server.
func TestTemporalCLIWithCodecServer(t *testing.T) {
	cli := testenv.TemporalCLI(t)
	quiet := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	srv := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{Logger: quiet}))
	ns := srv.GetDefaultNamespace()

	_, k := newKey(t)
	keys := mustKeys(t, "k1:"+k)
	dc, fc := ClientOptions(keys)
	c := srv.NewClientWithOptions(client.Options{DataConverter: dc, FailureConverter: fc, Logger: quiet})
	plain := srv.NewClientWithOptions(client.Options{Logger: quiet}) // no codec: what the service stores

	taskQueue := fmt.Sprintf("codec-%d", time.Now().UnixNano())
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(echoWorkflow, workflow.RegisterOptions{Name: "EchoWorkflow"})
	w.RegisterWorkflowWithOptions(failingWorkflow, workflow.RegisterOptions{Name: "FailingWorkflow"})
	w.RegisterActivityWithOptions(loginActivity, activity.RegisterOptions{Name: "Login"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	codecServer := httptest.NewServer(NewServer(keys, ServerOptions{Token: testToken, Namespaces: []string{ns}}))
	defer codecServer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	in := echoInput{Connector: "postgres", Password: canary}
	stamp := time.Now().UnixNano()

	show := func(t *testing.T, id string, extra ...string) string {
		t.Helper()
		args := append([]string{"workflow", "show", "--address", srv.GetFrontendHostPort(), "--namespace", ns,
			"--workflow-id", id, "--output", "json", "--color", "never"}, extra...)
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, cli, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("temporal %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return visible(t, stdout.Bytes())
	}

	t.Run("input and result", func(t *testing.T) {
		id := fmt.Sprintf("codec-echo-%d", stamp)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "EchoWorkflow", in)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		if err := run.Get(ctx, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, canary) {
			t.Fatalf("result %q: the codec client did not decode", out)
		}

		events := historyEvents(t, ctx, plain, id)
		assertNoCanary(t, events)
		started := events[0].GetWorkflowExecutionStartedEventAttributes()
		if enc := string(started.GetInput().GetPayloads()[0].GetMetadata()[MetadataEncoding]); enc != EncodingEncrypted {
			t.Fatalf("stored input encoding = %q, want %s", enc, EncodingEncrypted)
		}

		without := show(t, id)
		if strings.Contains(without, canary) {
			t.Fatal("the CLI without the codec shows the canary: the history holds plaintext")
		}
		if !strings.Contains(without, "EchoWorkflow") {
			t.Fatalf("unexpected CLI output:\n%s", without)
		}
		with := show(t, id, "--codec-endpoint", codecServer.URL, "--codec-auth", "Bearer "+testToken)
		if !strings.Contains(with, canary) {
			t.Fatalf("the CLI with the codec server does not show the decoded input:\n%s", with)
		}
		// A wrong token: the CLI cannot decode and fails (after its retries, bounded here by
		// --command-timeout); it never shows plaintext.
		cmd := exec.CommandContext(ctx, cli, "workflow", "show", "--address", srv.GetFrontendHostPort(), "--namespace", ns,
			"--workflow-id", id, "--output", "json", "--command-timeout", "2s",
			"--codec-endpoint", codecServer.URL, "--codec-auth", "Bearer wrong")
		wrongOut, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(wrongOut), canary) {
			t.Fatalf("the CLI with a wrong codec token: err %v, output:\n%s", err, wrongOut)
		}
	})

	// The CLI with an OIDC access token from a local issuer, against a codec server that has no
	// static token: what a person signed in through the identity provider can run.
	t.Run("OIDC access token", func(t *testing.T) {
		iss := oidctest.NewIssuer(t)
		v, _ := newOIDCVerifier(t, iss, nil)
		oidcServer := httptest.NewServer(NewServer(keys, ServerOptions{OIDC: v, Namespaces: []string{ns}}))
		defer oidcServer.Close()
		id := fmt.Sprintf("codec-oidc-%d", stamp)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "EchoWorkflow", in)
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		token := iss.Token(t, iss.Claims("alice", testAudience))
		if with := show(t, id, "--codec-endpoint", oidcServer.URL, "--codec-auth", "Bearer "+token); !strings.Contains(with, canary) {
			t.Fatalf("the CLI with an OIDC token does not show the decoded input:\n%s", with)
		}
		refused := iss.Token(t, iss.Claims("mallory", testAudience))
		cmd := exec.CommandContext(ctx, cli, "workflow", "show", "--address", srv.GetFrontendHostPort(), "--namespace", ns,
			"--workflow-id", id, "--output", "json", "--command-timeout", "2s",
			"--codec-endpoint", oidcServer.URL, "--codec-auth", "Bearer "+refused)
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), canary) {
			t.Fatalf("the CLI with a token of a subject not allowed: err %v, output:\n%s", err, out)
		}
	})

	t.Run("failure message", func(t *testing.T) {
		id := fmt.Sprintf("codec-fail-%d", stamp)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "FailingWorkflow", in)
		if err != nil {
			t.Fatal(err)
		}
		err = run.Get(ctx, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != "SourceAuthFailed" || !strings.Contains(err.Error(), canary) {
			t.Fatalf("err = %v: want the decoded SourceAuthFailed failure", err)
		}

		events := historyEvents(t, ctx, plain, id)
		assertNoCanary(t, events)
		var failure *historypb.HistoryEvent
		for _, ev := range events {
			if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED {
				failure = ev
			}
		}
		if failure == nil {
			t.Fatal("no ActivityTaskFailed event")
		}
		f := failure.GetActivityTaskFailedEventAttributes().GetFailure()
		if strings.Contains(f.GetMessage(), canary) || f.GetEncodedAttributes() == nil ||
			string(f.GetEncodedAttributes().GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			t.Fatalf("stored failure not encoded: message %q, attributes %v", f.GetMessage(), f.GetEncodedAttributes().GetMetadata())
		}
		if f.GetApplicationFailureInfo().GetType() != "SourceAuthFailed" {
			t.Fatalf("stored failure type = %q", f.GetApplicationFailureInfo().GetType())
		}

		if out := show(t, id); strings.Contains(out, canary) {
			t.Fatal("the CLI without the codec shows the failure's canary")
		}
		// The per-namespace endpoint form: the CLI puts the namespace in place of {namespace}.
		with := show(t, id, "--codec-endpoint", codecServer.URL+"/{namespace}", "--codec-auth", "Bearer "+testToken)
		if !strings.Contains(with, canary) {
			t.Fatalf("the CLI with the codec server does not show the decoded failure:\n%s", with)
		}
	})
}

func historyEvents(t *testing.T, ctx context.Context, c client.Client, id string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		t.Fatal("empty history")
	}
	return events
}

// visible is what a reader of the CLI's JSON output sees: the output itself, and each payload's
// data base64-decoded (workflow show --output json prints history in proto JSON, where payload
// data is base64).
func visible(t *testing.T, out []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("the CLI's output is not JSON: %v\n%s", err, out)
	}
	var sb strings.Builder
	sb.Write(out)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "data" {
					if b, err := base64.StdEncoding.DecodeString(s); err == nil {
						sb.WriteString("\n")
						sb.Write(b)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return sb.String()
}

// assertNoCanary checks the stored history's bytes: inputs, results, failures, everything.
func assertNoCanary(t *testing.T, events []*historypb.HistoryEvent) {
	t.Helper()
	for _, ev := range events {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Fatalf("history event %d (%s) holds the canary in the clear", ev.GetEventId(), ev.GetEventType())
		}
	}
}
