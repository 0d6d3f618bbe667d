package activities

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
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
//
// The policy judges every upload, whatever credentials it uses: the output (the bucket and the
// endpoint it is reached through) must be one outputs.s3 allows, even with the agent's own
// identity, and credentials from a secret must be allowed to go to that endpoint. Every
// connection the upload makes is judged again when it is dialled.
func (a *Activities) Publish(ctx context.Context, in PublishInput) (*PublishResult, error) {
	info := activity.GetInfo(ctx)
	if problems := in.S3.Validate(); len(problems) > 0 {
		return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: "the S3 output is not valid: " + strings.Join(problems, "; ")}, true)
	}
	if _, ok := connectors.Lookup(in.Connector); !ok {
		return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", in.Connector)}, true)
	}
	fields := sinkFields(in.Lease.Fields)
	creds, origins, _, err := a.Leases.GetWithOrigins(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, in.Connector, fields)
	if err != nil {
		return nil, appError(err, true)
	}
	defer zeroCreds(creds)
	endpoint, err := s3Destination(in.S3)
	if err != nil {
		return nil, appError(err, true)
	}
	check := a.outputCheck(ctx, in.S3, endpoint, origins)
	if err := check(endpoint); err != nil {
		return nil, appError(err, true)
	}
	sink, err := s3.New(ctx, in.S3, s3.Credentials{
		AccessKeyID:     creds[SinkFieldPrefix+"accessKeyId"],
		SecretAccessKey: creds[SinkFieldPrefix+"secretAccessKey"],
		SessionToken:    creds[SinkFieldPrefix+"sessionToken"],
	}, s3.Options{Dialer: &netguard.Dialer{Check: check}})
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

// outputCheck returns the check applied to the s3 output's endpoint and to every connection its
// upload dials: the dialled host must be the endpoint's, or the bucket's virtual host under it,
// at the endpoint's port; the policy must allow the output (outputs.s3) and, for credentials
// from a secret, their destination. Each denial is audited.
func (a *Activities) outputCheck(ctx context.Context, cfg s3.Config, endpoint netguard.Destination, origins []string) netguard.DestinationCheck {
	return func(d netguard.Destination) error {
		var err error
		switch {
		case d.Network != netguard.NetworkTCP || d.Port != endpoint.Port ||
			(d.Host != endpoint.Host && d.Host != strings.ToLower(cfg.Bucket)+"."+endpoint.Host):
			err = &secrets.Error{Kind: secrets.PolicyDenied, Msg: "the S3 output tried to reach a host other than its endpoint (a redirect?); refused"}
		case a.Policy != nil:
			if err = a.Policy.CheckOutput(cfg.Bucket, endpoint); err == nil && len(origins) > 0 {
				err = a.Policy.CheckDestination(endpoint, origins)
			}
		}
		if err != nil {
			a.audit(ctx, audit.Event{Event: audit.PolicyDenied, Secret: joinOrigins(origins), Outcome: string(secrets.PolicyDenied), Reason: err.Error()})
		}
		return err
	}
}

// s3Destination is where the sink connects: the endpoint's host and port, or the AWS regional
// S3 endpoint, in netguard's canonical form.
func s3Destination(cfg s3.Config) (netguard.Destination, error) {
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return netguard.Destination{}, &secrets.Error{Kind: secrets.InvalidInput, Msg: "output.endpoint is not a URL"}
		}
		d, err := netguard.DestinationOfURL(u)
		if err != nil {
			return netguard.Destination{}, &secrets.Error{Kind: secrets.InvalidInput, Msg: "output.endpoint: " + strings.TrimPrefix(err.Error(), "InvalidInput: ")}
		}
		return d, nil
	}
	region := cfg.Region
	if region == "" {
		region = s3.DefaultRegion
	}
	host := "s3." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		host += ".cn"
	}
	return netguard.ParseDestination(netguard.NetworkTCP, host+":443")
}
