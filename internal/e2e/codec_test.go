package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestCLIStartThroughCodecServer starts a workflow with the real temporal CLI through the codec
// server: the input arrives encrypted in history, and the encrypting agent reads it and
// completes the run.
func TestCLIStartThroughCodecServer(t *testing.T) {
	cli := testenv.TemporalCLI(t)
	keySpec := "e2e:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	keys, err := codec.ParseKeys(keySpec)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(codec.NewServer(keys, codec.ServerOptions{Token: "e2e-token"}))
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "shop.db")
	tables, _ := makeShop(t, db)
	t.Setenv("E2E_CODEC_DB", db)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_CODEC_*"}; s.CodecKeys = keySpec })

	id := fmt.Sprintf("codec-cli-%d", time.Now().UnixNano())
	out, err := exec.Command(cli, "workflow", "start", "--address", server.GetFrontendHostPort(), "--namespace", server.GetDefaultNamespace(),
		"--type", workflows.ExtractionWorkflowName, "--task-queue", h.taskQueue, "--workflow-id", id,
		"--codec-endpoint", srv.URL, "--codec-auth", "Bearer e2e-token",
		"--input", `{"connector": "sqlite", "connection": {"path": "E2E_CODEC_DB"}, "secretStore": {"type": "env"}}`).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow start: %v\n%s", err, out)
	}
	run := h.client.GetWorkflow(context.Background(), id, "")
	var sum workflows.Summary
	if err := run.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != int64(tables) {
		t.Fatalf("counts = %v", sum.Counts)
	}
	input := history(t, h.client, run).Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	if string(input.GetMetadata()["encoding"]) != codec.EncodingEncrypted || bytes.Contains(input.GetData(), []byte("E2E_CODEC_DB")) {
		t.Fatalf("the CLI's input was stored as %q, not encrypted", input.GetMetadata()["encoding"])
	}
}
