package adversarial

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestDestinationFormsCannotBypassRules (class 2): the example policy's leading-wildcard rule
// "*.replica.internal:<port>" used to match "::1%.replica.internal" (the matcher kept the IPv6
// zone, the dialler dropped it and reached ::1) and a Unix-socket directory ending in
// ".replica.internal". With the password allowed only there, each form is refused before any
// connection, the attacker's listeners on ::1 and on the socket receive nothing, and the
// password is nowhere. The same secret still reaches the host its other rule names.
func TestDestinationFormsCannotBypassRules(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	onV6 := proctest.NewTrap(t, "tcp6", "[::1]:0")
	sockDir := filepath.Join(t.TempDir(), "x.replica.internal")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := onV6.Port()
	onSocket := proctest.NewTrap(t, "unix", filepath.Join(sockDir, ".s.PGSQL."+strconv.Itoa(port)))
	a := startAgent(t, server, proctest.AgentOpts{
		Policy: fmt.Sprintf(`version: 1
stores: [env]
env:
  allow: ["ADV_*"]
destinations:
  default: deny
  rules:
    - secrets: ["ADV_PG_PASSWORD"]
      hosts: ["%s:%s", "*.replica.internal:%d"]
`, src.Host, src.Port, port),
		Env: map[string]string{"ADV_PG_PASSWORD": src.Password},
	})

	for _, host := range []string{"::1%.replica.internal", "[::1%.replica.internal]", "::1%25.replica.internal", sockDir} {
		in := src.Input("ADV_PG_PASSWORD")
		in.Connection["host"] = workflows.FieldValue(host)
		in.Connection["port"] = workflows.FieldValue(strconv.Itoa(port))
		ae := a.ExtractFails(in)
		if ae.Type() != "PolicyDenied" && ae.Type() != "InvalidInput" {
			t.Errorf("host form %q: %s %s, want a refusal", host, ae.Type(), ae.Message())
		}
	}
	onV6.AssertUntouched(t, "IPv6 loopback behind a zone")
	onSocket.AssertUntouched(t, "a Unix socket named like a replica")

	// The rule still works for what it names.
	sum := a.Succeeds(a.Start(workflows.ExtractionWorkflowName, src.Input("ADV_PG_PASSWORD"), 0))
	if sum.Counts["tables"] != 3 {
		t.Errorf("the allowed destination: counts %v", sum.Counts)
	}
	a.AssertNowhere(nil, src.Password)
}
