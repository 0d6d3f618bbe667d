package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// batchIDs returns the SecretIdList of every BatchGetSecretValue request, and their NextTokens.
func batchIDs(t *testing.T, f *fakeAWS) (lists [][]string, tokens []string) {
	t.Helper()
	for _, r := range f.recorded("secretsmanager.BatchGetSecretValue") {
		var in struct {
			SecretIdList []string
			NextToken    string
		}
		if err := json.Unmarshal(r.body, &in); err != nil {
			t.Fatal(err)
		}
		lists = append(lists, in.SecretIdList)
		tokens = append(tokens, in.NextToken)
	}
	return lists, tokens
}

func TestFetchBatchMixed(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("a", `{"user":"a"}`, "v-a-0000000000000000000000000000000001")
	f.addString("b", "b-value", "v-b-0000000000000000000000000000000001")
	f.addString("by-arn", "arn-value", "v-c-0000000000000000000000000000000001")
	f.addString("by-partial", "partial-value", "v-d-0000000000000000000000000000000001")
	f.addString("denied", "never-returned", "v-e-0000000000000000000000000000000001")
	f.addString("vanishing", "never-returned", "v-g-0000000000000000000000000000000001")
	cur, prev := "cur", "prev"
	f.mu.Lock()
	f.secrets = append(f.secrets, &fakeSecret{name: "rotated", arn: secretARN("rotated"), versions: []fakeVersion{
		{id: "rot-cur-000000000000000000000000000001", stages: []string{"AWSCURRENT"}, str: &cur},
		{id: "rot-prev-00000000000000000000000000001", stages: []string{"AWSPREVIOUS"}, str: &prev},
	}})
	f.mu.Unlock()
	// Per-secret errors, and one secret the store leaves out of both lists.
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, body []byte) bool {
		if op != "secretsmanager.BatchGetSecretValue" {
			return false
		}
		var in struct{ SecretIdList []string }
		_ = json.Unmarshal(body, &in)
		var values, errs []map[string]any
		for _, id := range in.SecretIdList {
			switch s := f.find(id); {
			case id == "denied":
				errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "AccessDeniedException", "Message": "not allowed"})
			case id == "vanishing":
			case s == nil:
				errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "ResourceNotFoundException", "Message": "can't find"})
			default:
				values = append(values, s.entry(s.versions[0]))
			}
		}
		writeJSON(w, map[string]any{"SecretValues": values, "Errors": errs})
		return true
	})
	s := newStore(t, f, Config{})

	refs := []secrets.Ref{
		{Path: "a"},
		{Path: "b"},
		{Path: secretARN("by-arn")},
		{Path: strings.TrimSuffix(secretARN("by-partial"), "-AbCdEf")},
		{Path: "rotated", Stage: "AWSPREVIOUS"},
		{Path: "rotated", Version: "rot-cur-000000000000000000000000000001"},
		{Path: "missing"},
		{Path: "denied"},
		{Path: "vanishing"},
		{Path: "a"}, // duplicate: its own copy
		{Path: "bad path"},
	}
	results, err := s.FetchBatch(ctxBG, refs)
	if err != nil {
		t.Fatalf("FetchBatch: %v", err)
	}
	if len(results) != len(refs) {
		t.Fatalf("%d results for %d refs", len(results), len(refs))
	}
	wantValues := map[int]string{0: `{"user":"a"}`, 1: "b-value", 2: "arn-value", 3: "partial-value", 4: "prev", 5: "cur", 9: `{"user":"a"}`}
	wantKinds := map[int]secrets.Kind{6: secrets.SecretNotFound, 7: secrets.AccessDenied, 8: secrets.SecretNotFound, 10: secrets.InvalidInput}
	for i, r := range results {
		if r.Ref != refs[i] {
			t.Errorf("result %d is for %v, want %v", i, r.Ref, refs[i])
		}
		if want, ok := wantValues[i]; ok {
			if r.Err != nil || r.Secret == nil || r.Secret.Value.Reveal() != want {
				t.Errorf("result %d (%s): %v, want value %q", i, refs[i], r.Err, want)
			}
			continue
		}
		if r.Secret != nil {
			t.Errorf("result %d (%s) has a secret", i, refs[i])
		}
		e := wantKind(t, r.Err, wantKinds[i])
		if e.Ref != refs[i].String() {
			t.Errorf("result %d error names %q, want %q", i, e.Ref, refs[i].String())
		}
	}
	if e := asError(t, results[7].Err); e.Detail != "AccessDeniedException" || !strings.Contains(e.Msg, "secretsmanager:BatchGetSecretValue") {
		t.Errorf("per-secret denial: %v", results[7].Err)
	}
	if results[4].Secret.Version != "rot-prev-00000000000000000000000000001" {
		t.Errorf("staged version %q", results[4].Secret.Version)
	}
	// The duplicate holds its own copy: zeroing one leaves the other.
	results[0].Secret.Zero()
	if results[9].Secret.Value.Reveal() != `{"user":"a"}` {
		t.Error("duplicate refs share one buffer")
	}

	lists, _ := batchIDs(t, f)
	if len(lists) != 1 || len(lists[0]) != 7 {
		t.Fatalf("batch requests %v, want one with the 7 distinct unversioned ids", lists)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 2 {
		t.Errorf("%d GetSecretValue requests, want 2 (the versioned and staged refs)", n)
	}
}

func TestFetchBatchChunksOf20(t *testing.T) {
	f := newFakeAWS(t)
	var refs []secrets.Ref
	for i := 0; i < 45; i++ {
		name := fmt.Sprintf("s%02d", i)
		f.addString(name, "value-"+name, fmt.Sprintf("v-%02d-00000000000000000000000000000001", i))
		refs = append(refs, secrets.Ref{Path: name})
	}
	s := newStore(t, f, Config{})
	results, err := s.FetchBatch(ctxBG, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.Secret.Value.Reveal() != "value-"+refs[i].Path {
			t.Errorf("%s: %v", refs[i].Path, r.Err)
		}
	}
	lists, _ := batchIDs(t, f)
	if len(lists) != 3 || len(lists[0]) != 20 || len(lists[1]) != 20 || len(lists[2]) != 5 {
		t.Errorf("chunks of %v ids, want 20, 20, 5", lens(lists))
	}
}

func lens(lists [][]string) []int {
	var n []int
	for _, l := range lists {
		n = append(n, len(l))
	}
	return n
}

func TestFetchBatchFollowsNextToken(t *testing.T) {
	f := newFakeAWS(t)
	f.pageSize = 2
	var refs []secrets.Ref
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("p%d", i)
		f.addString(name, "value-"+name, fmt.Sprintf("v-p%d-0000000000000000000000000000000001", i))
		refs = append(refs, secrets.Ref{Path: name})
	}
	s := newStore(t, f, Config{})
	results, err := s.FetchBatch(ctxBG, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.Secret.Value.Reveal() != "value-"+refs[i].Path {
			t.Errorf("%s: %v", refs[i].Path, r.Err)
		}
	}
	lists, tokens := batchIDs(t, f)
	if len(lists) != 3 || tokens[0] != "" || tokens[1] != "page-2" || tokens[2] != "page-4" {
		t.Errorf("pages with tokens %q, want \"\", page-2, page-4", tokens)
	}
	for _, l := range lists {
		if len(l) != 5 {
			t.Errorf("page request with ids %v, want the chunk's 5 ids again", l)
		}
	}
}

func TestFetchBatchEndlessNextToken(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		writeJSON(w, map[string]any{"SecretValues": []any{}, "NextToken": "same"})
		return true
	})
	s := newStore(t, f, Config{})
	results, err := s.FetchBatch(ctxBG, []secrets.Ref{{Path: "x"}, {Path: "y"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		wantKind(t, r.Err, secrets.StoreUnavailable)
	}
	if n := f.count("secretsmanager.BatchGetSecretValue"); n != 2 {
		t.Errorf("%d requests, want 2 (stop at a repeated token)", n)
	}
}

func TestFetchBatchWholeCallFailure(t *testing.T) {
	f := newFakeAWS(t)
	for i := 0; i < 25; i++ {
		f.addString(fmt.Sprintf("w%02d", i), "v", fmt.Sprintf("v-w%02d-000000000000000000000000000000001", i))
	}
	calls := 0
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		calls++
		if calls == 1 {
			return false // the first chunk succeeds
		}
		w.Header().Set("Retry-After", "4")
		writeJSONError(w, 400, "ThrottlingException", "Rate exceeded")
		return true
	})
	s := newStore(t, f, Config{})
	var refs []secrets.Ref
	for i := 0; i < 25; i++ {
		refs = append(refs, secrets.Ref{Path: fmt.Sprintf("w%02d", i)})
	}
	results, err := s.FetchBatch(ctxBG, refs)
	if results != nil {
		t.Errorf("results %v with a whole-call failure", results)
	}
	e := wantKind(t, err, secrets.Throttled)
	if e.RetryAfter != 4*time.Second {
		t.Errorf("RetryAfter %v", e.RetryAfter)
	}
	if n := f.count("secretsmanager.BatchGetSecretValue"); n != 2 {
		t.Errorf("%d requests, want 2 (no SDK retry of the throttled one)", n)
	}
}

func TestFetchBatchFallsBackWhenBatchDenied(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("one", "v1", "v-1-0000000000000000000000000000000001")
	f.addString("two", "v2", "v-2-0000000000000000000000000000000001")
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		if op != "secretsmanager.BatchGetSecretValue" {
			return false
		}
		writeJSONError(w, 400, "AccessDeniedException", "not authorized to perform: secretsmanager:BatchGetSecretValue")
		return true
	})
	s := newStore(t, f, Config{})
	results, err := s.FetchBatch(ctxBG, []secrets.Ref{{Path: "one"}, {Path: "two"}, {Path: "three"}})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Secret.Value.Reveal() != "v1" || results[1].Secret.Value.Reveal() != "v2" {
		t.Errorf("fallback values: %v %v", results[0].Err, results[1].Err)
	}
	if e := wantKind(t, results[2].Err, secrets.SecretNotFound); e.Ref != "three" {
		t.Errorf("Ref %q", e.Ref)
	}
	if n := f.count("secretsmanager.GetSecretValue"); n != 3 {
		t.Errorf("%d GetSecretValue requests, want 3", n)
	}
}

func TestFetchBatchDeadline(t *testing.T) {
	f := newFakeAWS(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request, op string, _ []byte) bool {
		<-r.Context().Done()
		return true
	})
	s := newStore(t, f, Config{})
	ctx, cancel := context.WithTimeout(ctxBG, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	results, err := s.FetchBatch(ctx, []secrets.Ref{{Path: "a"}, {Path: "b", Stage: "AWSCURRENT"}})
	if time.Since(start) > 2*time.Second {
		t.Error("FetchBatch ignored the deadline")
	}
	if results != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("results %v err %v, want a deadline error", results, err)
	}
	wantKind(t, err, secrets.StoreUnavailable)
}

func TestMatchesSecret(t *testing.T) {
	arn := secretARN("app/db")
	tests := []struct {
		id   string
		want bool
	}{
		{"app/db", true},
		{"app", false},
		{arn, true},
		{strings.TrimSuffix(arn, "-AbCdEf"), true},
		{strings.TrimSuffix(arn, "db-AbCdEf"), false},
		{strings.TrimSuffix(arn, "-AbCdEf") + "-x", false},
	}
	for _, tt := range tests {
		if got := matchesSecret(tt.id, arn, "app/db"); got != tt.want {
			t.Errorf("matchesSecret(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
