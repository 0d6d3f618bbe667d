package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/secure-agent/secure-agent/internal/specs"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// catalogReceiver is a local catalog endpoint: it checks the bearer token, validates every record
// it receives against the specification, and counts them by key. failFirst makes its first
// requests answer 503 (with Retry-After: 0).
type catalogReceiver struct {
	t         *testing.T
	token     string
	path      string
	validate  func(body []byte) (key string, err error)
	mu        sync.Mutex
	received  map[string]int
	bodies    []string
	refused   int
	failFirst int
}

func (c *catalogReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.RequestURI() != c.path {
		c.t.Errorf("the push went to %s %s, want POST %s", r.Method, r.URL.RequestURI(), c.path)
		http.Error(w, "", http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+c.token {
		c.refused++
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	if c.failFirst > 0 {
		c.failFirst--
		w.Header().Set("Retry-After", "0")
		http.Error(w, "", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Error(err)
		return
	}
	key, err := c.validate(body)
	if err != nil {
		c.t.Errorf("a pushed record does not validate: %v\n%.300s", err, body)
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	if c.received == nil {
		c.received = map[string]int{}
	}
	c.received[key]++
	c.bodies = append(c.bodies, string(body))
	w.WriteHeader(http.StatusOK)
}

func (c *catalogReceiver) counts() (records, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.received {
		records += n
		if n > 1 {
			duplicates += n - 1
		}
	}
	return records, duplicates
}

// openLineageReceiver validates each body as an OpenLineage event.
func openLineageReceiver(t *testing.T, token string) *catalogReceiver {
	return &catalogReceiver{t: t, token: token, path: "/api/v1/lineage", validate: func(b []byte) (string, error) {
		if err := specs.ValidateOpenLineageEvent(b); err != nil {
			return "", err
		}
		var ev struct {
			Dataset struct{ Namespace, Name string } `json:"dataset"`
		}
		err := json.Unmarshal(b, &ev)
		return ev.Dataset.Namespace + " " + ev.Dataset.Name, err
	}}
}

// dataHubReceiver reads each body as GMS's ingestProposal does and validates the proposal, its
// aspect decoded from the string GMS receives it in.
func dataHubReceiver(t *testing.T, token string) *catalogReceiver {
	return &catalogReceiver{t: t, token: token, path: "/aspects?action=ingestProposal", validate: func(b []byte) (string, error) {
		var body struct {
			Proposal struct {
				EntityType, EntityURN, ChangeType, AspectName string
				Aspect                                        struct{ Value, ContentType string }
			} `json:"proposal"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return "", err
		}
		p := body.Proposal
		if p.Aspect.ContentType != "application/json" {
			return "", &json.UnsupportedValueError{Str: "contentType " + p.Aspect.ContentType}
		}
		asFile, err := json.Marshal(map[string]any{"entityType": p.EntityType, "entityUrn": p.EntityURN, "changeType": p.ChangeType,
			"aspectName": p.AspectName, "aspect": map[string]json.RawMessage{"json": json.RawMessage(p.Aspect.Value)}})
		if err != nil {
			return "", err
		}
		return p.EntityURN + " " + p.AspectName, specs.ValidateDataHubProposal(asFile)
	}}
}

// TestCatalogPush pushes runs of real PostgreSQL and MariaDB catalogs to local OpenLineage and
// DataHub endpoints, on the real Temporal server, with the endpoints' URLs and tokens read from
// the secret store: every record arrives, validated, with its token; the tokens appear in no
// history, output file or log; a re-run of the unchanged catalog sends nothing again; an
// endpoint that is busy at first gets everything after retries; a wrong token fails the run at
// once (AccessDenied) without repeating the token.
func TestCatalogPush(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T) incrementalEngine{
		"postgres": postgresIncremental, "mariadb": mariadbIncremental,
	} {
		t.Run(name, func(t *testing.T) {
			eng := setup(t)
			olToken, dhToken := "ol-key-"+randomHex(t), "dh-token-"+randomHex(t)
			ol, dh := openLineageReceiver(t, olToken), dataHubReceiver(t, dhToken)
			ol.failFirst, dh.failFirst = 3, 2
			olSrv, dhSrv := httptest.NewServer(ol), httptest.NewServer(dh)
			defer olSrv.Close()
			defer dhSrv.Close()
			t.Setenv("E2E_INC_OL_URL", olSrv.URL)
			t.Setenv("E2E_INC_OL_KEY", olToken)
			t.Setenv("E2E_INC_DH_URL", dhSrv.URL)
			t.Setenv("E2E_INC_DH_TOKEN", dhToken)
			h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_INC_*"} })
			in := eng.input("")
			in.Output.Push = &workflows.PushSpec{
				OpenLineage: map[string]workflows.FieldValue{"url": "E2E_INC_OL_URL", "apiKey": "E2E_INC_OL_KEY"},
				DataHub:     map[string]workflows.FieldValue{"url": "E2E_INC_DH_URL", "token": "E2E_INC_DH_TOKEN"},
			}
			run := h.start(workflows.ExtractionWorkflowName, in)
			var sum workflows.Summary
			if err := run.Get(t.Context(), &sum); err != nil {
				t.Fatal(err)
			}
			events := readLines(t, sum.OutputDir+"/openlineage.jsonl")
			proposals := readArray(t, sum.OutputDir+"/datahub.json")
			if n, dup := ol.counts(); n != len(events) || dup != 0 || sum.Pushed["openlineage"].Sent != n {
				t.Errorf("OpenLineage endpoint got %d records (%d twice) for %d events; summary %+v", n, dup, len(events), sum.Pushed)
			}
			if n, dup := dh.counts(); n != len(proposals) || dup != 0 || sum.Pushed["datahub"].Sent != n {
				t.Errorf("DataHub endpoint got %d records (%d twice) for %d proposals; summary %+v", n, dup, len(proposals), sum.Pushed)
			}
			if ol.failFirst != 0 || dh.failFirst != 0 {
				t.Errorf("the busy answers were not all met: %d, %d left", ol.failFirst, dh.failFirst)
			}
			// The tokens are nowhere but in the requests' headers.
			for _, canary := range []string{olToken, dhToken} {
				if strings.Contains(haystack(t, history(t, h.client, run)), canary) {
					t.Errorf("the history holds a token")
				}
				scanRunForCanary(t, sum.OutputDir, canary)
				if strings.Contains(h.logs.String(), canary) {
					t.Errorf("the agent's log holds a token")
				}
			}

			// A re-run of the unchanged catalog sends nothing again.
			run = h.start(workflows.ExtractionWorkflowName, in)
			var again workflows.Summary
			if err := run.Get(t.Context(), &again); err != nil {
				t.Fatal(err)
			}
			olN, _ := ol.counts()
			dhN, _ := dh.counts()
			if olN != len(events) || dhN != len(proposals) || again.Pushed["openlineage"].Skipped != len(events) || again.Pushed["datahub"].Skipped != len(proposals) {
				t.Errorf("the re-run sent again: OpenLineage %d, DataHub %d records in all; summary %+v", olN, dhN, again.Pushed)
			}

			// A wrong token: the run fails at once, final, and does not repeat it.
			wrong := "wrong-" + randomHex(t)
			t.Setenv("E2E_INC_DH_TOKEN", wrong)
			// (Something must have changed: an endpoint that already has everything is not asked.)
			newTable := "CREATE TABLE c.t3 (id int)"
			if name == "mariadb" {
				newTable = "CREATE TABLE incc_" + strings.TrimPrefix(in.Filters.IncludeSchemas[0], "inc?_") + ".t3 (id int)"
			}
			eng.exec(t, newTable)
			run = h.start(workflows.ExtractionWorkflowName, in)
			err := run.Get(t.Context(), nil)
			if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "DataHub endpoint refused the token") {
				t.Fatalf("a wrong token: %v", err)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(haystack(t, history(t, h.client, run)), wrong) {
				t.Errorf("the failure or the history repeats the token")
			}
			// At most the requests already in flight (4) meet the refusal; none is sent again.
			if dh.refused < 1 || dh.refused > 4 {
				t.Errorf("the endpoint saw the wrong token %d times, want 1 to 4 (a refusal is final)", dh.refused)
			}
		})
	}
}

// TestCatalogPushPolicy: with a policy file, a push goes only to an endpoint outputs.catalogs
// lists, and a token from a secret only where that secret's destination rules allow: a starter
// who points output.push at another endpoint (to collect the customer's catalog token) gets
// PolicyDenied before anything is sent, and the denial is audited without the token.
func TestCatalogPushPolicy(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/shop.db"
	makeShop(t, db)
	token := "ol-key-" + randomHex(t)
	listed, attacker := openLineageReceiver(t, token), openLineageReceiver(t, token)
	listedSrv, attackerSrv := httptest.NewServer(listed), httptest.NewServer(attacker)
	defer listedSrv.Close()
	defer attackerSrv.Close()
	listedHost := strings.TrimPrefix(listedSrv.URL, "http://")
	policyFile, auditFile := dir+"/policy.yaml", dir+"/audit.jsonl"
	if err := os.WriteFile(policyFile, []byte(`version: 1
stores: [env]
env:
  allow: ["E2E_PUSH_*"]
sqlite:
  dirs: ["`+dir+`"]
outputs:
  catalogs:
    hosts: ["`+listedHost+`"]
destinations:
  default: deny
  rules:
    - secrets: ["E2E_PUSH_OL_KEY"]
      hosts: ["`+listedHost+`"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_PUSH_DB", db)
	t.Setenv("E2E_PUSH_OL_KEY", token)
	h := newHarness(t, func(s *worker.Settings) { s.PolicyFile, s.Audit, s.SQLiteDirs = policyFile, auditFile, nil })
	in := envInput("E2E_PUSH_DB")
	in.Source = "shop"
	push := func(url string) error {
		in.Output.Push = &workflows.PushSpec{OpenLineage: map[string]workflows.FieldValue{"url": workflows.FieldValue(url), "apiKey": "E2E_PUSH_OL_KEY"}}
		return h.start(workflows.ExtractionWorkflowName, in).Get(t.Context(), nil)
	}
	if err := push(attackerSrv.URL); err == nil || !strings.Contains(err.Error(), "PolicyDenied") {
		t.Fatalf("a push to an endpoint the policy does not list: %v", err)
	}
	if n, _ := attacker.counts(); n != 0 || attacker.refused != 0 {
		t.Errorf("the unlisted endpoint received %d records and %d refused requests", n, attacker.refused)
	}
	if err := push(listedSrv.URL); err != nil {
		t.Fatalf("a push to the listed endpoint: %v", err)
	}
	if n, _ := listed.counts(); n == 0 {
		t.Errorf("the listed endpoint received nothing")
	}
	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), `"event":"policy.denied"`) || strings.Contains(string(audit), token) {
		t.Errorf("the denial is not audited, or the audit holds the token")
	}
}
