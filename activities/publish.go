package activities

import (
	"context"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/output/s3"
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
	creds, err := a.Leases.Get(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, fields)
	if err != nil {
		return nil, appError(err, true)
	}
	defer zeroCreds(creds)
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
