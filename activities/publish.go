package activities

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/output/s3"
	"github.com/secure-agent/secure-agent/secrets"
)

// PublishInput is the input of Publish: the lease (for the output's credential fields) and the
// S3 sink.
type PublishInput struct {
	LeaseInput
	S3 s3.Config `json:"s3"`
}

// PublishResult says where the published run is.
type PublishResult struct {
	// ManifestURL is the s3:// URL of the published manifest.json.
	ManifestURL string `json:"manifestUrl"`
	Objects     int    `json:"objects"`
	Bytes       int64  `json:"bytes"`
}

// Publish uploads a finalized run from this worker's staging directory to S3-compatible storage,
// manifest last. It reads only the output's credential fields from the lease, never the
// source's. Publishing again replaces the same keys, so a retry is safe.
func (a *Activities) Publish(ctx context.Context, in PublishInput) (*PublishResult, error) {
	info := activity.GetInfo(ctx)
	fields := sinkFields(in.Lease.Fields)
	creds, origins, err := a.Leases.GetWithOrigins(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, fields)
	if err != nil {
		return nil, appError(err, true)
	}
	defer zeroCreds(creds)
	if a.Policy != nil && len(origins) > 0 {
		host, port := s3Destination(in.S3)
		if err := a.Policy.CheckDestination(host, port, origins); err != nil {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Secret: joinOrigins(origins), Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
			return nil, appError(err, true)
		}
	}
	sink, err := s3.New(ctx, in.S3, s3.Credentials{
		AccessKeyID:     creds[SinkFieldPrefix+"accessKeyId"],
		SecretAccessKey: creds[SinkFieldPrefix+"secretAccessKey"],
		SessionToken:    creds[SinkFieldPrefix+"sessionToken"],
	}, s3.Options{})
	if err != nil {
		return nil, appError(err, false)
	}
	dir := a.runDir(ctx, in.Connector, in.S3.Prefix)
	keyPrefix := strings.Join([]string{output.SafeComponent(in.Connector), output.SafeComponent(info.WorkflowExecution.ID), output.SafeComponent(info.WorkflowExecution.RunID)}, "/")
	res, err := sink.Publish(ctx, dir, keyPrefix)
	if err != nil {
		return nil, appError(err, false)
	}
	a.logger().Info("output published", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID,
		"manifest", res.ManifestURL, "objects", len(res.Objects))
	var bytes int64
	for _, o := range res.Objects {
		bytes += o.Bytes
	}
	return &PublishResult{ManifestURL: res.ManifestURL, Objects: len(res.Objects), Bytes: bytes}, nil
}

// s3Destination is where the sink's credentials go: the endpoint's host and port, or the AWS
// regional S3 endpoint.
func s3Destination(cfg s3.Config) (string, int) {
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err == nil {
			port, _ := strconv.Atoi(u.Port())
			if port == 0 {
				port = 443
				if u.Scheme == "http" {
					port = 80
				}
			}
			return u.Hostname(), port
		}
	}
	region := cfg.Region
	if region == "" {
		region = s3.DefaultRegion
	}
	return "s3." + region + ".amazonaws.com", 443
}
