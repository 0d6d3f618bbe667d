package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/internal/testenv"
)

func TestVersionString(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	rev := "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	cases := []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          string
	}{
		{"set at build time, no vcs", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "secure-agent v1.2.3"},
		{"set at build time, with vcs", "v1.2.3", &debug.BuildInfo{Settings: vcs("vcs.revision", rev, "vcs.time", "2026-12-05T10:00:00Z", "vcs.modified", "false")},
			"secure-agent v1.2.3 1a2b3c4d5e6f 2026-12-05T10:00:00Z"},
		{"devel, modified tree", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-05T10:00:00Z", "vcs.modified", "true")},
			"secure-agent (devel) 1a2b3c4d5e6f 2026-12-05T10:00:00Z (modified)"},
		{"module version from go install", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "secure-agent v1.4.0"},
		{"pseudo-version already holds the commit", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205100000-1a2b3c4d5e6f"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-12-05T10:00:00Z")},
			"secure-agent v0.0.0-20261205100000-1a2b3c4d5e6f 2026-12-05T10:00:00Z"},
		{"-buildvcs=false: no vcs settings", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("-buildmode", "exe", "GOOS", "linux")},
			"secure-agent (devel)"},
		{"no build info at all", "dev", nil, "secure-agent (devel)"},
		{"empty main version (test binaries)", "", &debug.BuildInfo{}, "secure-agent (devel)"},
	}
	for _, c := range cases {
		if got := versionString(c.ldflags, c.bi); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVersionOfARealBuild builds the binary with vcs stamping (overriding -buildvcs=false in
// GOFLAGS) and a version set with -ldflags, and checks what `version` prints against git.
func TestVersionOfARealBuild(t *testing.T) {
	if testing.Short() {
		testenv.RequireOrSkip(t, "-short: this test builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		testenv.RequireOrSkip(t, fmt.Sprintf("not in a git checkout (%v): vcs stamping cannot be checked", err))
	}
	bin := filepath.Join(t.TempDir(), "secure-agent")
	build := exec.Command("go", "build", "-buildvcs=true", "-tags", "noserver", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	want := "secure-agent v9.9.9-test " + strings.TrimSpace(string(head))[:12] + " "
	if !strings.HasPrefix(got, want) {
		t.Fatalf("version printed %q, want it to start with %q", got, want)
	}
}
