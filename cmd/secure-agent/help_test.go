package main

import (
	"bytes"
	"context"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/worker"
)

// TestEveryCommandHasHelp runs `<command> --help` (and -h, and `help <command>`) for every
// command: exit 0, the help on stdout, every flag the command defines named in it, and the
// settings section present.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			var seen []*flag.FlagSet
			flagSetSeen = func(fs *flag.FlagSet) { seen = append(seen, fs) }
			var stdout, stderr bytes.Buffer
			code := mainWith(context.Background(), args, &stdout, &stderr)
			flagSetSeen = nil
			if code != 0 {
				t.Errorf("%v exited %d: %s", args, code, &stderr)
				continue
			}
			help := stdout.String()
			if help == "" {
				t.Errorf("%v printed no help on stdout (stderr %q)", args, &stderr)
			}
			for _, fs := range seen {
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(help, "--"+f.Name) {
						t.Errorf("%v: the help does not name the flag --%s:\n%s", args, f.Name, help)
					}
				})
				if !strings.Contains(help, "settings") {
					t.Errorf("%v: the help has no settings section:\n%s", args, help)
				}
			}
		}
	}
}

// TestHelpNamesTheSettingsEachCommandReads checks the settings lists against the code that reads
// them: worker.Dial's TEMPORAL_* variables for the commands that dial, worker.Settings for the
// agent, the codec server's token.
func TestHelpNamesTheSettingsEachCommandReads(t *testing.T) {
	help := func(args ...string) string {
		var stdout bytes.Buffer
		if code := mainWith(context.Background(), append(args, "--help"), &stdout, &bytes.Buffer{}); code != 0 {
			t.Fatalf("%v --help exited %d", args, code)
		}
		return stdout.String()
	}
	want := map[string][]string{
		"run":          {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "SECURE_AGENT_CODEC_KEYS", "SECURE_AGENT_POLICY_FILE", "SECURE_AGENT_ALLOW_SENSITIVE_LITERALS"},
		"check":        {"TEMPORAL_ADDRESS", "SECURE_AGENT_ENV_ALLOW", "SECURE_AGENT_SQLITE_DIRS", "SECURE_AGENT_OUTPUT_DIR", "AWS_*"},
		"codec-server": {"SECURE_AGENT_CODEC_KEYS", "SECURE_AGENT_CODEC_KEYS_FILE", codecServerTokenVar},
		"dev":          {"SECURE_AGENT_ENV_ALLOW"},
		"version":      {"settings: none"},
	}
	for cmd, names := range want {
		h := help(cmd)
		for _, n := range names {
			if !strings.Contains(h, n) {
				t.Errorf("%s --help does not name %s:\n%s", cmd, n, h)
			}
		}
	}
	// The worker reads every agent setting: its help names each, with a description.
	w := help("worker")
	st := reflect.TypeOf(worker.Settings{})
	tags := map[string]bool{}
	for i := range st.NumField() {
		tag := st.Field(i).Tag.Get("envconfig")
		if tag == "" {
			continue
		}
		tags[tag] = true
		if !strings.Contains(w, worker.EnvPrefix+"_"+tag+" ") {
			t.Errorf("worker --help does not name %s_%s", worker.EnvPrefix, tag)
		}
		if agentSettingAbout[tag] == "" {
			t.Errorf("agentSettingAbout has no description of %s_%s", worker.EnvPrefix, tag)
		}
	}
	for tag := range agentSettingAbout {
		if !tags[tag] {
			t.Errorf("agentSettingAbout describes %s_%s, which worker.Settings does not have", worker.EnvPrefix, tag)
		}
	}
	if dev := strings.Join(strings.Fields(help("dev")), " "); !strings.Contains(dev, "TEMPORAL_* settings are not read") || strings.Contains(dev, "TEMPORAL_ADDRESS ") {
		t.Errorf("dev's help should say it does not read TEMPORAL_*")
	}
}

func TestBadFlagsExitTwoWithAPointerToHelp(t *testing.T) {
	for _, args := range [][]string{{"run", "--bogus"}, {"check", "--input"}, {"worker", "stray"}, {"version", "--x"}} {
		var stdout, stderr bytes.Buffer
		code := mainWith(context.Background(), args, &stdout, &stderr)
		if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "--help' for its flags and settings") {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, &stdout, &stderr)
		}
	}
}
