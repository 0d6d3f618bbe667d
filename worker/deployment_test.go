package worker

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
)

func TestBuildIDFromStamp(t *testing.T) {
	const rev = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          string
	}{
		{"ldflags stamp wins", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-1a2b3c4d5e6f"}, Settings: vcs("false")}, "v1.4.0"},
		{"ldflags stamp of a modified tree still wins: the builder named it", "v1.4.0-rc1", &debug.BuildInfo{Settings: vcs("true")}, "v1.4.0-rc1"},
		{"go install module@version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.2"}}, "v1.3.2"},
		{"pseudo-version of a clean checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-1a2b3c4d5e6f"}, Settings: vcs("false")}, "v0.0.0-20261205100000-1a2b3c4d5e6f"},
		{"commit when no module version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, rev[:12]},
		{"modified tree: none", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-1a2b3c4d5e6f+dirty"}, Settings: vcs("true")}, ""},
		{"+dirty without vcs settings: none", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-1a2b3c4d5e6f+dirty"}}, ""},
		{"-buildvcs=false: none", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, ""},
		{"no build info: none", "dev", nil, ""},
	} {
		if got := BuildIDFromStamp(c.ldflags, c.bi); got != c.want {
			t.Errorf("%s: BuildIDFromStamp = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestDeploymentSettings: versioning is off by default; the values the Temporal server refuses
// (or that a shell would split) are refused at start, each with the variable's name; a versioned
// agent without a build id is refused with a message naming SECURE_AGENT_BUILD_ID.
func TestDeploymentSettings(t *testing.T) {
	s, err := LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.deployment(); err != nil || d.UseVersioning || d.Version.BuildID != "" {
		t.Fatalf("default deployment options = %+v, %v; want versioning off", d, err)
	}
	if got, err := s.WithVersionStamp("v9.9.9", nil); err != nil || got.BuildID != "" {
		t.Fatalf("versioning off: WithVersionStamp set build id %q (%v); want it left alone", got.BuildID, err)
	}

	for _, c := range []struct{ name, build, want string }{
		{"agent.prod", "v1", "SECURE_AGENT_DEPLOYMENT_NAME: must not contain '.' or ':'"},
		{"agent:prod", "v1", "SECURE_AGENT_DEPLOYMENT_NAME: must not contain '.' or ':'"},
		{"__agent", "v1", "SECURE_AGENT_DEPLOYMENT_NAME: must not start with \"__\""},
		{"my agent", "v1", "SECURE_AGENT_DEPLOYMENT_NAME: must be printable ASCII without spaces"},
		{strings.Repeat("a", 256), "v1", "SECURE_AGENT_DEPLOYMENT_NAME: must be at most 255 bytes, got 256"},
		{"agent", "v1 2", "SECURE_AGENT_BUILD_ID: must be printable ASCII without spaces"},
		{"agent", "v1\n", "SECURE_AGENT_BUILD_ID: must be printable ASCII without spaces"},
		{"agent", "__v1", "SECURE_AGENT_BUILD_ID: must not start with \"__\""},
		{"agent", "é1", "SECURE_AGENT_BUILD_ID: must be printable ASCII without spaces"},
		{"agent", strings.Repeat("b", 256), "SECURE_AGENT_BUILD_ID: must be at most 255 bytes"},
		{"", "v1", "SECURE_AGENT_BUILD_ID is set but SECURE_AGENT_DEPLOYMENT_NAME is not"},
	} {
		t.Setenv("SECURE_AGENT_DEPLOYMENT_NAME", c.name)
		t.Setenv("SECURE_AGENT_BUILD_ID", c.build)
		if _, err := LoadSettings(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("name %q, build id %q: error %v, want %q", c.name, c.build, err, c.want)
		}
	}

	// Good values: a build id may hold what image tags and versions hold, '.' and ':' included.
	t.Setenv("SECURE_AGENT_DEPLOYMENT_NAME", "secure-agent_prod-eu")
	t.Setenv("SECURE_AGENT_BUILD_ID", "v1.4.0+build.7:amd64")
	s, err = LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	s, err = s.WithVersionStamp("v9.9.9", nil)
	if err != nil || s.BuildID != "v1.4.0+build.7:amd64" {
		t.Fatalf("an explicit build id must win over the stamp: %q, %v", s.BuildID, err)
	}
	d, err := s.deployment()
	if err != nil || !d.UseVersioning || d.Version.DeploymentName != "secure-agent_prod-eu" || d.Version.BuildID != "v1.4.0+build.7:amd64" ||
		d.DefaultVersioningBehavior != workflow.VersioningBehaviorPinned {
		t.Fatalf("deployment options = %+v, %v; want versioned, pinned", d, err)
	}

	// No build id: the stamp gives it, or the agent refuses to start.
	t.Setenv("SECURE_AGENT_BUILD_ID", "")
	s, err = LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.WithVersionStamp("v1.5.0", nil); err != nil || got.BuildID != "v1.5.0" {
		t.Fatalf("stamped binary: build id %q, %v; want v1.5.0", got.BuildID, err)
	}
	if _, err := s.WithVersionStamp("v1.5.0 beta", nil); err == nil || !strings.Contains(err.Error(), "version stamp \"v1.5.0 beta\" is not a valid build id") {
		t.Errorf("a stamp with a space: %v", err)
	}
	_, err = s.WithVersionStamp("dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	if err == nil || !strings.Contains(err.Error(), "no version stamp") || !strings.Contains(err.Error(), "Set SECURE_AGENT_BUILD_ID") {
		t.Errorf("unstamped binary: %v; want a refusal asking for SECURE_AGENT_BUILD_ID", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(nil, s, logger); err == nil || !strings.Contains(err.Error(), "SECURE_AGENT_BUILD_ID") {
		t.Errorf("New with a deployment name and no build id: %v", err)
	}
}

// TestVersionedAgentRegistersOnlyItsSharedQueue starts a versioned agent on an in-process
// Temporal server: its version appears in the Worker Deployment with the shared task queue
// (workflow and activity types) and without the per-process lease and control queues, which
// stay unversioned (see deployment.go).
func TestVersionedAgentRegistersOnlyItsSharedQueue(t *testing.T) {
	srv := temporaltest.NewServer(temporaltest.WithT(t))
	dir := t.TempDir()
	settings := Settings{
		TaskQueue: "versioned-" + time.Now().Format("150405.000000"),
		OutputDir: filepath.Join(dir, "out"), LeaseTTL: time.Hour, SecretCacheSize: 16,
		MaxConcurrentActivities: 2, MaxConcurrentWorkflowTasks: 2, StopTimeout: time.Second,
		LogLevel: "info", LogFormat: "json", AWSSessionName: "secure-agent", Audit: "off",
		DeploymentName: "agent-unit", BuildID: "build-1",
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := DialWith(context.Background(), settings, client.Options{HostPort: srv.GetFrontendHostPort(), Namespace: srv.GetDefaultNamespace()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	agent, err := New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()

	handle := c.WorkerDeploymentClient().GetHandle("agent-unit")
	var queues []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		desc, err := handle.DescribeVersion(ctx, client.WorkerDeploymentDescribeVersionOptions{BuildID: "build-1"})
		cancel()
		queues = queues[:0]
		if err == nil {
			for _, q := range desc.Info.TaskQueuesInfos {
				queues = append(queues, q.Name+"/"+map[client.TaskQueueType]string{client.TaskQueueTypeWorkflow: "workflow", client.TaskQueueTypeActivity: "activity"}[q.Type])
			}
		}
		if slices.Contains(queues, settings.TaskQueue+"/workflow") && slices.Contains(queues, settings.TaskQueue+"/activity") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version agent-unit/build-1 did not register the shared queue within 30s: queues %v, last error %v", queues, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The lease and control workers have polled by now (they start first); give the server a
	// moment more to register anything it would, then check that nothing else is in the version.
	time.Sleep(2 * time.Second)
	desc, err := handle.DescribeVersion(context.Background(), client.WorkerDeploymentDescribeVersionOptions{BuildID: "build-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range desc.Info.TaskQueuesInfos {
		if q.Name != settings.TaskQueue {
			t.Errorf("version agent-unit/build-1 holds task queue %q (type %v): only the shared queue %q should be versioned", q.Name, q.Type, settings.TaskQueue)
		}
	}
}
