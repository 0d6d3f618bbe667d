// Package adversarial attacks the agent the way whoever starts workflows can: with nothing but
// workflow input (the Web UI, `temporal workflow start`, `secure-agent run` and `check`), and,
// since anyone with write access to the namespace can run a worker of their own, by calling the
// agent's activities directly with any input. Each test plants canary values (passwords, tokens,
// file contents), runs the production binary as `secure-agent worker` processes against the real
// `temporal server start-dev`, and then proves the rule it attacks: the canaries are in no
// history (payloads decoded), worker log, audit line, output file, metric or CLI output, and the
// attacker's listeners received nothing.
//
// The tests need the temporal CLI and PostgreSQL that scripts/services provides; without them
// they skip, or fail when SECURE_AGENT_REQUIRE_INTEGRATION=1.
package adversarial

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/secure-agent/secure-agent/internal/proctest"
)

// binary is the production binary, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "secure-agent-adversarial-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = proctest.Build(dir, filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer proctest.KillAll()
	return m.Run()
}

// canary returns a value no test writes anywhere else.
func canary(t testing.TB, prefix string) string { return proctest.Canary(t, prefix) }

// startAgent starts the production binary as a worker against server.
func startAgent(t *testing.T, server *proctest.DevServer, opts proctest.AgentOpts) *proctest.Agent {
	t.Helper()
	return proctest.StartAgent(t, binary, server, opts)
}
