package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Tracing is configured by OpenTelemetry's standard variables, read by the agent (which decides
// whether to trace at all and over which protocol) and by the OpenTelemetry SDK and its OTLP
// exporter (everything else). The SDK and exporter skip a value they cannot parse and carry on
// with the default, logging it (a malformed OTLP header is logged with its value, which may be a
// token): readTracingEnv therefore checks every variable they read first and refuses the lot,
// naming each bad variable without echoing header values.

// Protocols of the OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	protocolGRPC = "grpc"
	protocolHTTP = "http/protobuf"
)

// tracingEnv is what the OTEL_* variables ask of the agent.
type tracingEnv struct {
	// on reports that spans are exported: OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint is
	// set and OTEL_TRACES_EXPORTER is not none; never when OTEL_SDK_DISABLED=true.
	on bool
	// protocol is protocolGRPC or protocolHTTP (the OpenTelemetry default).
	protocol string
}

// readTracingEnv reads the OTEL_* variables through getenv and reports every invalid one at once.
// When tracing is off, only the variables that switch it on or off are checked: the others are
// not used.
func readTracingEnv(getenv func(string) string) (tracingEnv, error) {
	var env tracingEnv
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	disabled := false
	if v := get("OTEL_SDK_DISABLED"); v != "" {
		b, ok := parseBool(v)
		if !ok {
			bad("OTEL_SDK_DISABLED", "must be true or false, got %q", v)
		}
		disabled = b
	}
	exporter := ""
	if v := get("OTEL_TRACES_EXPORTER"); v != "" {
		switch strings.ToLower(v) {
		case "otlp", "none":
			exporter = strings.ToLower(v)
		default:
			bad("OTEL_TRACES_EXPORTER", "must be otlp or none (this agent exports traces over OTLP only), got %q", v)
		}
	}
	endpointSet := get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	env.on = !disabled && (exporter == "otlp" || exporter == "" && endpointSet)
	if len(errs) > 0 {
		return tracingEnv{}, errors.Join(errs...)
	}
	if !env.on {
		return env, nil
	}

	env.protocol = protocolHTTP
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} { // the second wins
		switch v := get(name); v {
		case "":
		case protocolGRPC, protocolHTTP:
			env.protocol = v
		case "http/json":
			bad(name, "http/json is not supported by the OpenTelemetry Go exporter: use grpc or http/protobuf")
		default:
			bad(name, "must be grpc or http/protobuf, got %q", v)
		}
	}
	for _, prefix := range []string{"OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"} {
		checkOTLPEnv(prefix, get, bad)
	}
	checkSDKEnv(getenv, bad)
	if len(errs) > 0 {
		return tracingEnv{}, errors.Join(errs...)
	}
	return env, nil
}

// checkOTLPEnv checks the exporter's variables of one prefix (the general or the traces one).
func checkOTLPEnv(prefix string, get func(string) string, bad func(name, format string, args ...any)) {
	if v := get(prefix + "ENDPOINT"); v != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil:
			bad(prefix+"ENDPOINT", "must be a URL such as http://collector:4318 (it does not parse as a URL)")
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad(prefix+"ENDPOINT", "must be a URL such as http://collector:4318 (scheme http or https, which says whether TLS is used, and a host), got %q", u.Redacted())
		}
	}
	if v := get(prefix + "INSECURE"); v != "" {
		if _, ok := parseBool(v); !ok {
			bad(prefix+"INSECURE", "must be true or false, got %q", v)
		}
	}
	if v := get(prefix + "HEADERS"); v != "" {
		checkHeaders(prefix+"HEADERS", v, bad)
	}
	if v := get(prefix + "COMPRESSION"); v != "" && v != "gzip" && v != "none" {
		bad(prefix+"COMPRESSION", "must be gzip or none, got %q", v)
	}
	if v := get(prefix + "TIMEOUT"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			bad(prefix+"TIMEOUT", "must be a positive number of milliseconds, got %q", v)
		}
	}
	if v := get(prefix + "CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			bad(prefix+"CERTIFICATE", "cannot read the CA file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			bad(prefix+"CERTIFICATE", "%s holds no PEM certificate", v)
		}
	}
	cert, key := get(prefix+"CLIENT_CERTIFICATE"), get(prefix+"CLIENT_KEY")
	switch {
	case cert == "" && key == "":
	case cert == "" || key == "":
		bad(prefix+"CLIENT_CERTIFICATE", "set both %sCLIENT_CERTIFICATE and %sCLIENT_KEY, or neither", prefix, prefix)
	default:
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			bad(prefix+"CLIENT_KEY", "the client certificate %s and key %s do not load as a pair: %v", cert, key, err)
		}
	}
}

// checkHeaders checks an OTLP headers value: comma-separated key=value pairs, values
// URL-encoded. Messages name the pair by position and key, never a value.
func checkHeaders(name, v string, bad func(name, format string, args ...any)) {
	for i, pair := range strings.Split(v, ",") {
		key, val, found := strings.Cut(pair, "=")
		key = strings.TrimSpace(key)
		switch {
		case !found:
			bad(name, "pair %d has no '=': write key=value pairs separated by commas (the value is not shown)", i+1)
		case !validHeaderKey(key):
			bad(name, "pair %d: %q is not a valid header name", i+1, key)
		default:
			if _, err := url.PathUnescape(val); err != nil {
				bad(name, "pair %d (%s): the value is not valid URL encoding (write %%2C for a comma; the value is not shown)", i+1, key)
			}
		}
	}
}

// validHeaderKey reports whether k is an HTTP token (RFC 9110), as the exporter requires.
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

// checkSDKEnv checks the variables the tracer provider, its batch processor and its resource
// read, as the SDK reads them (numbers untrimmed: " 5" is not a number to it).
func checkSDKEnv(get func(string) string, bad func(name, format string, args ...any)) {
	sampler := strings.ToLower(strings.TrimSpace(get("OTEL_TRACES_SAMPLER")))
	switch sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if v := strings.TrimSpace(get("OTEL_TRACES_SAMPLER_ARG")); v != "" {
			if r, err := strconv.ParseFloat(v, 64); err != nil || r < 0 || r > 1 {
				bad("OTEL_TRACES_SAMPLER_ARG", "must be a ratio between 0 and 1, got %q", v)
			}
		}
	default:
		bad("OTEL_TRACES_SAMPLER", "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, got %q", sampler)
	}
	for _, name := range []string{"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT"} {
		if v := get(name); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				bad(name, "must be a number of milliseconds, got %q", v)
			}
		}
	}
	for _, name := range []string{"OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"} {
		if v := get(name); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				bad(name, "must be a positive number, got %q", v)
			}
		}
	}
	for _, name := range []string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT",
		"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_EVENT_COUNT_LIMIT",
		"OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_LINK_COUNT_LIMIT", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"} {
		if v := get(name); v != "" {
			if _, err := strconv.Atoi(v); err != nil {
				bad(name, "must be a whole number (negative: no limit), got %q", v)
			}
		}
	}
	if v := get("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		for i, pair := range strings.Split(v, ",") {
			key, val, found := strings.Cut(pair, "=")
			if !found || strings.TrimSpace(key) == "" {
				bad("OTEL_RESOURCE_ATTRIBUTES", "pair %d is not key=value: write key=value pairs separated by commas", i+1)
				continue
			}
			if _, err := url.PathUnescape(strings.TrimSpace(val)); err != nil {
				bad("OTEL_RESOURCE_ATTRIBUTES", "pair %d (%s): the value is not valid URL encoding (write %%2C for a comma)", i+1, strings.TrimSpace(key))
			}
		}
	}
}

// parseBool reads an OpenTelemetry boolean: true or false, in any case.
func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
