package activities

import (
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/output"
)

// TestPushEndpoint: the URL rules of a catalog push, and that a refusal never repeats the URL
// (it may come from a secret).
func TestPushEndpoint(t *testing.T) {
	for _, tc := range []struct {
		url, token string
		want       string // the API URL, or "" when refused
	}{
		{"https://marquez.internal:5000", "k", "https://marquez.internal:5000/api/v1/lineage"},
		{"https://marquez.internal/base/", "k", "https://marquez.internal/base/api/v1/lineage"},
		{"http://127.0.0.1:5000", "k", "http://127.0.0.1:5000/api/v1/lineage"},
		{"http://localhost:5000", "k", "http://localhost:5000/api/v1/lineage"},
		{"http://marquez.internal:5000", "", "http://marquez.internal:5000/api/v1/lineage"},
		{"http://marquez.internal:5000", "k", ""},        // a token over plain http, off the host
		{"https://user:pw@marquez.internal", "k", ""},    // credentials in the URL
		{"https://marquez.internal/?next=evil", "k", ""}, // a query
		{"ftp://marquez.internal", "", ""},               // another scheme
		{"marquez.internal:5000", "", ""},                // not absolute
		{"https://marquez.internal:99999", "", ""},       // no such port
	} {
		ep, _, err := pushEndpoint("OpenLineage", output.FormatOpenLineage, tc.url, tc.token)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: accepted", tc.url)
		case tc.want != "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && ep.URL.String() != tc.want:
			t.Errorf("%s: posts to %s, want %s", tc.url, ep.URL, tc.want)
		case err != nil && (strings.Contains(err.Error(), "marquez") || strings.Contains(err.Error(), "pw")):
			t.Errorf("%s: the refusal repeats the URL: %v", tc.url, err)
		}
	}
	ep, _, err := pushEndpoint("DataHub", output.FormatDataHub, "https://gms.internal:8080", "t")
	if err != nil || ep.URL.String() != "https://gms.internal:8080/aspects?action=ingestProposal" {
		t.Errorf("datahub: %v %v", ep.URL, err)
	}
}
