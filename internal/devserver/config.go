package devserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Default values of Config, also written (commented) in temporal-dev.yaml.
const (
	DefaultFrontendAddress = "127.0.0.1:7233"
	DefaultUIAddress       = "127.0.0.1:8233"
	DefaultNamespace       = "default"
	DefaultLogLevel        = "error"
	DefaultRetention       = 24 * time.Hour
)

// minRetention is the shortest namespace retention Validate accepts.
const minRetention = time.Hour

// systemNamespace is created by the server itself and may not be configured.
const systemNamespace = "temporal-system"

// namespaceName is what Validate accepts as a namespace name: the characters
// Temporal tooling and URLs (the Web UI puts names in paths) handle without
// escaping.
var namespaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// Config is the local Temporal environment, as written in temporal-dev.yaml.
// Every key is optional; DefaultConfig gives the value of a missing key.
//
// Start applies the defaults to zero-valued FrontendAddress, Namespace,
// LogLevel and Retention, so a Config built in code needs only the fields it
// changes. UIAddress and DatabaseFile are different: there the empty string
// is meaningful (no UI; in-memory database), so start from DefaultConfig to
// get the UI.
type Config struct {
	// FrontendAddress is the host:port the Temporal frontend (gRPC) listens
	// on and clients dial. Port 0 picks a free port (see
	// Server.FrontendAddress). The host must be an IP address or
	// "localhost"; a non-loopback host needs AllowNonLoopback.
	FrontendAddress string `yaml:"frontendAddress"`

	// UIAddress is the host:port the Temporal Web UI listens on, with the
	// same rules as FrontendAddress. The empty string disables the UI.
	UIAddress string `yaml:"uiAddress"`

	// Namespace is created when the server starts (if it does not exist yet)
	// and is the UI's default namespace.
	Namespace string `yaml:"namespace"`

	// ExtraNamespaces are created as well, for tests or demos that want
	// isolation. Names must differ from each other, from Namespace and from
	// "temporal-system".
	ExtraNamespaces []string `yaml:"extraNamespaces"`

	// DatabaseFile is the SQLite file that holds the server's state. Empty
	// (the default) keeps everything in memory and loses it on Stop. A path
	// keeps workflows across restarts; the file and its schema are created on
	// first use, its directory must exist. LoadConfig resolves a relative
	// path against the directory of the YAML file.
	DatabaseFile string `yaml:"databaseFile"`

	// LogLevel is the lowest level of the server's own log records that reach
	// the logger given to Start: "debug", "info", "warn" or "error". The
	// server is chatty at info and warns about routine things (shutdown, Nexus); "error" keeps `secure-agent dev` readable.
	LogLevel string `yaml:"logLevel"`

	// Retention is how long closed workflows of the configured namespaces are
	// kept, as a Go duration ("24h", "168h"); at least one hour. It applies
	// when a namespace is created, so an existing database keeps its
	// namespaces' retention.
	Retention time.Duration `yaml:"retention"`

	// AllowNonLoopback permits FrontendAddress and UIAddress on a
	// non-loopback interface (for example 0.0.0.0 inside a container). The
	// dev server has no authentication: anyone who reaches these ports can
	// start, read and terminate workflows.
	AllowNonLoopback bool `yaml:"allowNonLoopback"`

	// UICodecEndpoint is the URL of a remote codec server that the Web UI
	// (the browser) calls to decode payloads, for example
	// "http://127.0.0.1:8081". Empty: the UI shows payloads as stored.
	UICodecEndpoint string `yaml:"uiCodecEndpoint"`

	// TLS, when TLS.CertFile is set, makes the frontend serve TLS and, with
	// TLS.RequireClientCert, accept only clients with a certificate issued by
	// TLS.ClientCAFile (mutual TLS). Off by default. The Web UI still serves
	// plain HTTP. LoadConfig resolves relative paths against the directory
	// of the YAML file.
	TLS TLSConfig `yaml:"tls"`
}

// DefaultConfig returns the configuration used when temporal-dev.yaml is
// missing: frontend on 127.0.0.1:7233, UI on 127.0.0.1:8233, namespace
// "default", in-memory database, server logs at warn and above, one day of
// retention, loopback only, no codec endpoint.
func DefaultConfig() Config {
	return Config{
		FrontendAddress: DefaultFrontendAddress,
		UIAddress:       DefaultUIAddress,
		Namespace:       DefaultNamespace,
		LogLevel:        DefaultLogLevel,
		Retention:       DefaultRetention,
	}
}

// LoadConfig reads the YAML file at path on top of DefaultConfig and
// validates the result.
//
// A missing file is not an error: it yields DefaultConfig. An empty file, or
// one with only comments, does too. A key that Config does not know is an
// error that names the key (and the line), so typos do not go unnoticed.
// Validation problems are all reported at once (see Config.Validate). A
// relative DatabaseFile is made relative to the directory of path.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("devserver: reading %s: %w", path, err)
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("devserver: %s: %w (known keys: %s)", path, err, strings.Join(yamlKeys(), ", "))
	}
	// A second document would be silently ignored; refuse it instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("devserver: %s: holds more than one YAML document; keep only one", path)
	}

	if cfg.DatabaseFile != "" && !filepath.IsAbs(cfg.DatabaseFile) {
		cfg.DatabaseFile = filepath.Join(filepath.Dir(path), cfg.DatabaseFile)
	}
	for _, f := range []*string{&cfg.TLS.CertFile, &cfg.TLS.KeyFile, &cfg.TLS.ClientCAFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("devserver: %s: %w", path, err)
	}
	return cfg, nil
}

// yamlKeys lists the keys Config accepts, in declaration order.
func yamlKeys() []string {
	t := reflect.TypeFor[Config]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return keys
}

// withDefaults fills the zero-valued fields whose zero value means "unset".
func (c Config) withDefaults() Config {
	if c.FrontendAddress == "" {
		c.FrontendAddress = DefaultFrontendAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Validate checks every field and returns all problems at once, joined with
// errors.Join; each message names the temporal-dev.yaml key and says what to
// write instead. Validate does not touch the network or the file system:
// whether a port is free or a directory exists is checked by Start.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	frontend, err := parseAddress("frontendAddress", c.FrontendAddress, c.AllowNonLoopback)
	if err != nil {
		errs = append(errs, err)
	}
	if c.UIAddress != "" {
		ui, err := parseAddress("uiAddress", c.UIAddress, c.AllowNonLoopback)
		if err != nil {
			errs = append(errs, err)
		} else if frontend.port != 0 && ui.port == frontend.port && sameHostMaybe(ui.ip, frontend.ip) {
			add("uiAddress %q and frontendAddress %q use the same port: give the UI another port (default 8233)", c.UIAddress, c.FrontendAddress)
		}
	}

	seen := map[string]bool{}
	checkNamespace := func(key, name string) {
		switch {
		case name == systemNamespace:
			add("%s %q is reserved by the Temporal server: choose another name", key, name)
		case !namespaceName.MatchString(name):
			add("%s %q is not a valid namespace name: use 1-255 letters, digits, '.', '_' or '-', starting with a letter or digit", key, name)
		case seen[name]:
			add("%s lists %q twice (or repeats namespace): remove the duplicate", key, name)
		}
		seen[name] = true
	}
	checkNamespace("namespace", c.Namespace)
	for _, ns := range c.ExtraNamespaces {
		checkNamespace("extraNamespaces", ns)
	}

	if c.DatabaseFile != "" {
		if strings.ContainsAny(c.DatabaseFile, "?#%") {
			add("databaseFile %q contains '?', '#' or '%%', which SQLite would read as part of a URI: choose a path without them", c.DatabaseFile)
		}
		if strings.HasSuffix(c.DatabaseFile, string(filepath.Separator)) || strings.HasSuffix(c.DatabaseFile, "/") {
			add("databaseFile %q names a directory: give a file name such as temporal-dev.db", c.DatabaseFile)
		}
	}

	if _, err := parseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}

	if c.Retention < minRetention {
		add("retention %s is too short: use at least 1h (default 24h)", c.Retention)
	}

	if c.UICodecEndpoint != "" {
		u, err := url.Parse(c.UICodecEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("uiCodecEndpoint %q is not an http(s) URL: write it like http://127.0.0.1:8081", c.UICodecEndpoint)
		} else if u.User != nil {
			add("uiCodecEndpoint must not carry credentials in the URL: remove the user:password@ part")
		}
	}

	errs = append(errs, c.TLS.validate()...)

	return errors.Join(errs...)
}

// address is a validated host:port.
type address struct {
	ip   net.IP // never nil; "localhost" becomes 127.0.0.1
	port int    // 0 means "pick a free port"
}

// hostPort formats a for dialing or binding.
func (a address) hostPort() string {
	return net.JoinHostPort(a.ip.String(), strconv.Itoa(a.port))
}

// dialIP is the IP a client on this machine dials to reach a listener bound
// to a.ip: the loopback address for an unspecified (all interfaces) bind.
func (a address) dialIP() net.IP {
	if a.ip.IsUnspecified() {
		if a.ip.To4() != nil {
			return net.IPv4(127, 0, 0, 1)
		}
		return net.IPv6loopback
	}
	return a.ip
}

// parseAddress validates one of the address keys.
func parseAddress(key, value string, allowNonLoopback bool) (address, error) {
	host, portText, err := net.SplitHostPort(value)
	if err != nil {
		return address{}, fmt.Errorf("%s %q is not host:port: write it like 127.0.0.1:7233 (port 0 picks a free port)", key, value)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return address{}, fmt.Errorf("%s %q has an invalid port %q: use a number from 0 to 65535 (0 picks a free port)", key, value, portText)
	}
	var ip net.IP
	switch {
	case host == "":
		ip = net.IPv4zero
	case strings.EqualFold(host, "localhost"):
		ip = net.IPv4(127, 0, 0, 1)
	default:
		ip = net.ParseIP(host)
		if ip == nil {
			return address{}, fmt.Errorf("%s %q: host %q is not an IP address: use 127.0.0.1 or localhost (or another IP address with allowNonLoopback: true)", key, value, host)
		}
	}
	if !ip.IsLoopback() && !allowNonLoopback {
		return address{}, fmt.Errorf("%s %q listens beyond this machine, and the dev server has no authentication: use 127.0.0.1, or set allowNonLoopback: true if you really mean it", key, value)
	}
	return address{ip: ip, port: port}, nil
}

// sameHostMaybe reports whether listeners on a and b could collide on a port.
func sameHostMaybe(a, b net.IP) bool {
	return a.Equal(b) || a.IsUnspecified() || b.IsUnspecified()
}

// parseLogLevel maps the logLevel key to a slog level.
func parseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logLevel %q is not one of debug, info, warn, error (default error)", s)
}
