package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/secure-agent/secure-agent/worker"
)

// helpText is what `secure-agent <command> --help` prints besides the flags: how to call the
// command, what it does, and the settings (environment variables) it reads.
type helpText struct {
	usage    string    // "secure-agent run --input FILE [flags]"
	about    string    // one paragraph
	settings []setting // what the command reads from the environment, in the order shown
}

// setting is one environment variable a command reads, or a family of them ("AWS_*").
type setting struct {
	name, about string
}

// newFlagSet returns a subcommand's flag set; parseFlags decides where its messages go.
func newFlagSet(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}

// flagSetSeen, when set (by tests), is handed every flag set parseFlags parses.
var flagSetSeen func(*flag.FlagSet)

// parseFlags parses a subcommand's arguments. -h, -help and --help print the command's help (its
// usage, flags and settings) on stdout and return exitError{0}. A bad flag or an unexpected
// argument is reported on stderr with a pointer to --help and returns exitError{2}. Every
// subcommand parses its flags with it.
func parseFlags(fs *flag.FlagSet, args []string, h helpText, stdout, stderr io.Writer) error {
	if flagSetSeen != nil {
		flagSetSeen(fs)
	}
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the flag package calls it on -h as on errors; both are handled below
	hint := func() { fmt.Fprintf(stderr, "run 'secure-agent %s --help' for its flags and settings\n", fs.Name()) }
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs, h)
		return exitError{0}
	case err != nil:
		hint() // the flag package has said what is wrong
		return exitError{2}
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "secure-agent %s: unexpected argument %q: flags come before it, and the command takes no other arguments\n", fs.Name(), fs.Arg(0))
		hint()
		return exitError{2}
	}
	return nil
}

// printHelp writes a command's help: usage, what it does, its flags, the settings it reads.
func printHelp(w io.Writer, fs *flag.FlagSet, h helpText) {
	fmt.Fprintf(w, "usage: %s\n\n", h.usage)
	if h.about != "" {
		fmt.Fprintf(w, "%s\n\n", wrap(h.about, 100))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "flags:")
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	fmt.Fprintf(tw, "  %s\t%s\n", "-h, --help", "print this help")
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(h.settings) == 0 {
		fmt.Fprintln(w, "settings: none (this command reads no environment variables)")
		return
	}
	fmt.Fprintln(w, "settings (environment variables):")
	for _, s := range h.settings {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.about)
	}
	_ = tw.Flush()
	if hasAgentSetting(h.settings) {
		fmt.Fprintf(w, "\nEvery %s_* setting is checked at start, also those this command does not use: an invalid one stops it.\n", worker.EnvPrefix)
	}
}

func hasAgentSetting(ss []setting) bool {
	for _, s := range ss {
		if strings.HasPrefix(s.name, worker.EnvPrefix+"_") {
			return true
		}
	}
	return false
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// temporalSettings are the variables worker.Dial reads (the SDK's envconfig package, as the
// temporal CLI reads them).
var temporalSettings = []setting{
	{"TEMPORAL_ADDRESS", "Temporal frontend host:port (default localhost:7233)"},
	{"TEMPORAL_NAMESPACE", "namespace (default \"default\")"},
	{"TEMPORAL_API_KEY", "API key (Temporal Cloud); turns TLS on unless TEMPORAL_TLS* say otherwise"},
	{"TEMPORAL_TLS", "true: connect with TLS"},
	{"TEMPORAL_TLS_CLIENT_CERT_PATH, _DATA", "client certificate (mutual TLS), as a file or PEM text"},
	{"TEMPORAL_TLS_CLIENT_KEY_PATH, _DATA", "its private key, as a file or PEM text"},
	{"TEMPORAL_TLS_SERVER_CA_CERT_PATH, _DATA", "CA that issued the server's certificate"},
	{"TEMPORAL_TLS_SERVER_NAME", "name to verify the server's certificate against"},
	{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "true: do not verify the server's name (testing only)"},
	{"TEMPORAL_CLIENT_AUTHORITY", "gRPC :authority header"},
	{"TEMPORAL_GRPC_META_*", "extra gRPC headers"},
	{"TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE", "a temporal CLI configuration file and profile instead"},
}

// cloudSettings are the agent's own cloud credentials, read by the aws, azure and gcp stores and
// the s3 output (never from workflow input).
var cloudSettings = []setting{
	{"AWS_*", "the AWS default credential chain (aws store, s3 output): keys, profile, web identity, region"},
	{"AZURE_TENANT_ID, AZURE_CLIENT_ID, ...", "Azure identity (azure store): service principal or workload identity"},
	{"GOOGLE_APPLICATION_CREDENTIALS", "Google Application Default Credentials (gcp store)"},
}

// agentSettingAbout describes each agent setting (worker.Settings) by its variable's suffix;
// TestHelpNamesEverySetting keeps it complete.
var agentSettingAbout = map[string]string{
	"TASK_QUEUE":                    "task queue the agent polls",
	"OUTPUT_DIR":                    "root directory of local output",
	"ENV_ALLOW":                     "patterns of variables the env store may read (none by default)",
	"CUSTOM_STORE_ENV_ALLOW":        "patterns of variables custom stores may send as headers or tokens",
	"CUSTOM_STORE_HOSTS":            "hosts a custom store's store_url may name (none by default)",
	"VAULT_ADDR":                    "the Vault (or OpenBao) server of secretStore type vault (none by default)",
	"VAULT_NAMESPACE":               "Vault Enterprise namespace",
	"VAULT_CA_FILE":                 "PEM file of the CA Vault's certificate is verified with",
	"VAULT_AUTH":                    "how the agent logs in to Vault: token, approle, kubernetes or jwt",
	"VAULT_AUTH_MOUNT":              "the Vault auth method's mount path (default: the method's name)",
	"VAULT_TOKEN":                   "Vault token (token login), if not in VAULT_TOKEN_FILE",
	"VAULT_TOKEN_FILE":              "file holding the Vault token (token login)",
	"VAULT_ROLE":                    "Vault role to log in as (kubernetes, jwt)",
	"VAULT_ROLE_ID":                 "AppRole role id (approle login)",
	"VAULT_SECRET_ID_FILE":          "file holding the AppRole secret id (approle login)",
	"VAULT_JWT_FILE":                "file holding the JWT (jwt; kubernetes: default the pod's service account token)",
	"CUSTOM_STORE_VERSION_PATHS":    "host=path: where a custom store's answer holds the version id",
	"CUSTOM_STORE_CA_FILES":         "host=file: CA bundle a custom store is verified with",
	"ALLOW_SENSITIVE_LITERALS":      "true: sensitive fields may hold literals (local development only)",
	"LEASE_TTL":                     "how long resolved credentials stay in memory unused",
	"LEASE_CHECK_INTERVAL":          "how often the agent checks that runs holding leases are alive",
	"MAX_LEASES":                    "most credential leases held at once",
	"SQLITE_DIRS":                   "directories SQLite files may be opened in (none by default)",
	"SECRET_CACHE_TTL":              "cache secrets this long (0: no cache)",
	"SECRET_CACHE_SIZE":             "most secrets cached",
	"AWS_SESSION_NAME":              "name of the agent's assume-role sessions",
	"MAX_CONCURRENT_ACTIVITIES":     "activities running at once on each worker",
	"MAX_CONCURRENT_WORKFLOW_TASKS": "workflow tasks running at once",
	"STOP_TIMEOUT":                  "how long running activities get to finish on shutdown",
	"PROGRESS_INTERVAL":             "how often an extraction batch reports its running counts (10ms to 5s)",
	"POLICY_FILE":                   "agent policy file (replaces the allowlist settings)",
	"AUDIT":                         "audit trail: stdout, stderr, off or a file path",
	"CODEC_KEYS":                    "payload encryption keys id:base64key,... (none: not encrypted)",
	"CODEC_KEYS_FILE":               "a file of payload encryption keys",
	"HTTP_ADDRESS":                  "host:port for /metrics, /healthz and /readyz (off by default)",
	"LOG_LEVEL":                     "debug, info, warn or error",
	"LOG_FORMAT":                    "json or text",
	"DEPLOYMENT_NAME":               "Temporal Worker Deployment to join: turns Worker Versioning on, runs pinned to their build (off by default)",
	"BUILD_ID":                      "this build's id in the deployment (default: the binary's version stamp)",
}

// agentSettings returns the named agent settings (suffixes of SECURE_AGENT_*), with their
// defaults read from worker.Settings; none named: all of them, in worker.Settings' order.
func agentSettings(suffixes ...string) []setting {
	defaults := map[string]string{}
	var all []string
	t := reflect.TypeOf(worker.Settings{})
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		all = append(all, name)
		defaults[name] = f.Tag.Get("default")
	}
	if len(suffixes) == 0 {
		suffixes = all
	}
	out := make([]setting, 0, len(suffixes))
	for _, s := range suffixes {
		about := agentSettingAbout[s]
		if d := defaults[s]; d != "" && d != "false" && d != "0s" {
			about += fmt.Sprintf(" (default %s)", d)
		}
		out = append(out, setting{worker.EnvPrefix + "_" + s, about})
	}
	return out
}

// settingsOf concatenates setting lists.
func settingsOf(lists ...[]setting) []setting {
	var out []setting
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
