// Package adversarial attacks the agent from where the threat model puts the attacker: whoever
// can start a workflow, through the workflow input and the documented clients (the Web UI,
// `temporal workflow start`, `secure-agent run` and `check`), and whoever has write access to the
// namespace, with a worker and a workflow of their own that call the agent's activities by name
// with any input. Each test plants canary values (passwords, tokens, file contents), runs the
// production binary as `secure-agent worker` processes against the real `temporal server
// start-dev`, proves the rule it attacks, and ends by searching every place a secret must never
// reach for the canaries: histories with payloads decoded, the worker's log at debug level, the
// audit trail, output files, metrics and CLI output; the attacker's listeners must have received
// nothing.
//
// The tests need the temporal CLI and PostgreSQL that scripts/services provides; without them
// they skip, or fail when SECURE_AGENT_REQUIRE_INTEGRATION=1.
package adversarial

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/secure-agent/secure-agent/internal/proctest"
)

// binary is the production binary, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, filepath.Join("..", ".."), &binary))
}

// canary returns a value no test writes anywhere else.
func canary(t testing.TB, prefix string) string { return proctest.Canary(t, prefix) }

// startAgent starts the production binary as a worker against server.
func startAgent(t *testing.T, server *proctest.DevServer, opts proctest.AgentOpts) *proctest.Agent {
	t.Helper()
	return proctest.StartAgent(t, binary, server, opts)
}
