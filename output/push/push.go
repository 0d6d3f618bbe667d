// Package push sends a run's catalog formats to the catalogs that ingest them over HTTP: each
// OpenLineage event to an OpenLineage endpoint (POST <url>/api/v1/lineage, as Marquez and the
// OpenLineage HTTP transport use), and each DataHub proposal to GMS (POST
// <url>/aspects?action=ingestProposal, as DataHub's REST emitter does), with the endpoint's
// token as a bearer token.
//
// A Ledger remembers, per endpoint, what was sent (a digest of each record's content, without
// the event time): a record whose content was already sent there is skipped, so a re-run of an
// unchanged catalog sends nothing again, and a push resumed after a failure does not send twice
// what it already sent.
//
// Nothing here logs, and no error holds the endpoint's URL, the token, or a response body (an
// endpoint may echo what it was sent): errors name the catalog, the HTTP status and what to check.
package push

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/secure-agent/secure-agent/output/datahub"
	"github.com/secure-agent/secure-agent/secrets"
)

// Record is one request of a push: its ledger key (what it describes), the digest of its content
// and its body.
type Record struct {
	Key, Digest string
	Body        []byte
}

// Endpoint is where a push goes: the catalog's name for messages ("OpenLineage", "DataHub"),
// the URL each record is posted to, and the bearer token (empty for none).
type Endpoint struct {
	Catalog string
	URL     *url.URL
	Token   string
}

// Options tune a push.
type Options struct {
	// Concurrency is how many requests are in flight at once (default 4).
	Concurrency int
	// Attempts bounds the tries of one record (default 5); Backoff is the first wait between
	// them (default 500 ms), doubled each time, and a 429's or 503's Retry-After is honoured up
	// to MaxWait (default 30 s).
	Attempts int
	Backoff  time.Duration
	MaxWait  time.Duration
	// Progress, when set, is called after each record sent or skipped, with the counts so far.
	Progress func(sent, skipped int)
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	return o
}

// Result counts what a push did.
type Result struct {
	Sent    int `json:"sent"`
	Skipped int `json:"skipped"`
}

// ErrRefused marks a final refusal by the endpoint (a 4xx other than 408 and 429): sending
// again will not help. ErrUnauthorized, which wraps it, is a refused token (401, 403).
var (
	ErrRefused      = errors.New("push: refused by the endpoint")
	ErrUnauthorized = fmt.Errorf("%w: token refused", ErrRefused)
)

// Send posts every record the ledger does not hold with the same digest, and records each one
// sent in the ledger. It stops at the first record that still fails after its attempts, or that
// the endpoint refuses (ErrRefused); the records sent before stay in the ledger.
func Send(ctx context.Context, client *http.Client, ep Endpoint, records []Record, ledger *Ledger, o Options) (Result, error) {
	o = o.withDefaults()
	var (
		mu    sync.Mutex
		res   Result
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan Record)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for r := range work {
				err := sendOne(ctx, client, ep, r, o)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
						cancel()
					}
				} else {
					ledger.Put(r.Key, r.Digest)
					res.Sent++
					if o.Progress != nil {
						o.Progress(res.Sent, res.Skipped)
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, r := range records {
		if ledger.Has(r.Key, r.Digest) {
			mu.Lock()
			res.Skipped++
			if o.Progress != nil {
				o.Progress(res.Sent, res.Skipped)
			}
			mu.Unlock()
			continue
		}
		select {
		case work <- r:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return res, first
}

// sendOne posts one record, retrying what may pass later.
func sendOne(ctx context.Context, client *http.Client, ep Endpoint, r Record, o Options) error {
	wait := o.Backoff
	var last error
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		retryAfter, err := post(ctx, client, ep, r.Body)
		if err == nil || errors.Is(err, ErrRefused) {
			return err
		}
		last = err
		if attempt == o.Attempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = min(retryAfter, o.MaxWait)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, o.MaxWait)
	}
	return fmt.Errorf("%s endpoint: still failing after %d attempts: %w", ep.Catalog, o.Attempts, last)
}

// post sends one body; it returns the wait the endpoint asked for (Retry-After) with a
// retryable error.
func post(ctx context.Context, client *http.Client, ep Endpoint, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL.String(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %s endpoint: the request cannot be built", ErrRefused, ep.Catalog)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-RestLi-Protocol-Version", "2.0.0") // GMS's Rest.li; ignored by others
	if ep.Token != "" {
		req.Header.Set("Authorization", "Bearer "+ep.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%s endpoint unreachable: %s", ep.Catalog, transportReason(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // never read into a message
	_ = resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return 0, nil
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("%s endpoint busy (%d)", ep.Catalog, s)
	case s == http.StatusRequestTimeout || s >= 500:
		return 0, fmt.Errorf("%s endpoint failed (%d)", ep.Catalog, s)
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return 0, fmt.Errorf("%w: the %s endpoint refused the token (%d %s): check the secret it is read from and the token's rights",
			ErrUnauthorized, ep.Catalog, s, http.StatusText(s))
	case s >= 300 && s < 400:
		return 0, fmt.Errorf("%w: the %s endpoint answered with a redirect (%d), which the agent does not follow: give the URL it redirects to",
			ErrRefused, ep.Catalog, s)
	default:
		return 0, fmt.Errorf("%w: the %s endpoint refused a record (%d %s): check that the URL is the catalog's API base",
			ErrRefused, ep.Catalog, s, http.StatusText(s))
	}
}

// transportReason says why a request could not be made, without the URL, host or address (which
// may come from a secret): a denial by the dialer's check (its message names no host), or the
// kind of network failure.
func transportReason(err error) string {
	var se *secrets.Error
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var wrongHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.As(err, &unknownCA), errors.As(err, &wrongHost), errors.As(err, &invalid):
		return "its TLS certificate is not trusted, or not for that host"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return "network error"
}

// retryAfter reads a Retry-After header given in seconds (0 when absent or a date).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// Digest is the hex SHA-256 of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// OpenLineageRecords turns the lines of openlineage.jsonl into records keyed by the dataset
// (namespace and name); the digest leaves out eventTime, which every run sets anew.
func OpenLineageRecords(lines [][]byte) ([]Record, error) {
	out := make([]Record, 0, len(lines))
	for i, l := range lines {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(l, &ev); err != nil {
			return nil, fmt.Errorf("push: event %d of openlineage.jsonl is not JSON: %w", i+1, err)
		}
		var ds struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		}
		if err := json.Unmarshal(ev["dataset"], &ds); err != nil {
			return nil, fmt.Errorf("push: event %d of openlineage.jsonl has no dataset: %w", i+1, err)
		}
		delete(ev, "eventTime")
		content, err := json.Marshal(ev) // sorted keys: the same content, the same bytes
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Key: ds.Namespace + "\n" + ds.Name, Digest: Digest(content), Body: l})
	}
	return out, nil
}

// DataHubRecords turns the elements of datahub.json into records keyed by entity and aspect,
// each with the body GMS's ingestProposal takes.
func DataHubRecords(elements [][]byte) ([]Record, error) {
	out := make([]Record, 0, len(elements))
	for i, e := range elements {
		p, err := datahub.ParseFileProposal(e)
		if err != nil {
			return nil, fmt.Errorf("push: proposal %d of datahub.json: %w", i+1, err)
		}
		b, err := p.IngestBody()
		if err != nil {
			return nil, fmt.Errorf("push: proposal %d of datahub.json: %w", i+1, err)
		}
		out = append(out, Record{Key: p.EntityURN + "\n" + p.AspectName, Digest: Digest(b), Body: b})
	}
	return out, nil
}
