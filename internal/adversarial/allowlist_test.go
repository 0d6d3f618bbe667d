package adversarial

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/proctest"
)

// TestAllowlistThatExposesTokensIsRefusedAtStartUp (class 8): an env-store allowlist of
// wildcards only, or one that can name the variables the custom stores send as credentials,
// would let workflow input read the agent's tokens and other teams' passwords through the env
// store. The agent refuses to start with one, naming the setting and why, and never gets as far
// as polling: the token is not in its output.
func TestAllowlistThatExposesTokensIsRefusedAtStartUp(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	token := canary(t, "vault-token")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"wildcard only", []string{"SECURE_AGENT_ENV_ALLOW=*"}, "SECURE_AGENT_ENV_ALLOW: pattern \"*\" matches every variable"},
		{"overlaps the custom store's token", []string{"SECURE_AGENT_ENV_ALLOW=DB_*,*_TOKEN", "SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW=VAULT_TOKEN"},
			"can match variables that SECURE_AGENT_CUSTOM_STORE_ENV_ALLOW lets custom stores send"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(binary, "worker")
			cmd.Env = append(proctest.MinimalEnv(dir), append(tc.env, "TEMPORAL_ADDRESS="+server.Addr(), "VAULT_TOKEN="+token)...)
			p := proctest.Start(t, "worker", cmd, filepath.Join(dir, "worker.log"))
			select {
			case <-p.Exited():
			case <-time.After(30 * time.Second):
				p.Kill(t)
				t.Fatal("the worker started with an allowlist that exposes the agent's tokens")
			}
			if code := p.Cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("exit code 0")
			}
			log := proctest.ReadFile(t, p.Log)
			if !strings.Contains(log, tc.want) {
				t.Errorf("the refusal does not say why: %s", log)
			}
			if strings.Contains(log, token) {
				t.Error("the token is in the worker's output")
			}
		})
	}
}
