package datahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ChangeType is every proposal's change type: the aspect replaces the entity's current one.
const ChangeType = "UPSERT"

// contentType is the GenericAspect content type of an aspect serialised as JSON.
const contentType = "application/json"

// Proposal is one metadata change proposal: an UPSERT of one aspect of one entity.
type Proposal struct {
	// EntityType is "container" or "dataset".
	EntityType string
	// EntityURN is the entity's URN.
	EntityURN string
	// AspectName names the aspect ("schemaMetadata", "status", ...).
	AspectName string
	// Aspect is the aspect's value as JSON in DataHub's model (a union member written as
	// {"<member's fully qualified name>": {...}}).
	Aspect json.RawMessage
}

// fileProposal is a proposal as the file source reads it (the "simplified structure" of
// MetadataChangeProposalWrapper.to_obj): the aspect as JSON under "json".
type fileProposal struct {
	EntityType string     `json:"entityType"`
	EntityURN  string     `json:"entityUrn"`
	ChangeType string     `json:"changeType"`
	AspectName string     `json:"aspectName"`
	Aspect     fileAspect `json:"aspect"`
}

type fileAspect struct {
	JSON json.RawMessage `json:"json"`
}

// ingestBody is the body of POST /aspects?action=ingestProposal, as rest_emitter.emit_mcp
// builds it: the proposal (MetadataChangeProposal) with the aspect as a GenericAspect, its JSON
// in a string.
type ingestBody struct {
	Proposal ingestProposal `json:"proposal"`
}

type ingestProposal struct {
	EntityType string        `json:"entityType"`
	EntityURN  string        `json:"entityUrn"`
	ChangeType string        `json:"changeType"`
	AspectName string        `json:"aspectName"`
	Aspect     genericAspect `json:"aspect"`
}

type genericAspect struct {
	Value       string `json:"value"`
	ContentType string `json:"contentType"`
}

// check returns why p cannot be written: a field missing, or an aspect that is not a JSON
// object with at least one member (the file source takes an empty "json" for no aspect).
func (p Proposal) check() error {
	if p.EntityType == "" || p.EntityURN == "" || p.AspectName == "" {
		return errors.New("datahub: a proposal lacks its entity type, entity URN or aspect name")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p.Aspect, &obj); err != nil {
		return fmt.Errorf("datahub: aspect %s of %s is not a JSON object: %w", p.AspectName, p.EntityURN, err)
	}
	if len(obj) == 0 {
		return fmt.Errorf("datahub: aspect %s of %s is empty", p.AspectName, p.EntityURN)
	}
	return nil
}

// IngestBody returns the JSON body GMS's POST /aspects?action=ingestProposal takes for p:
// {"proposal": {"entityType", "entityUrn", "changeType", "aspectName", "aspect": {"value":
// "<the aspect's JSON>", "contentType": "application/json"}}}. The bytes are the same for the
// same proposal.
func (p Proposal) IngestBody() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var value bytes.Buffer
	if err := json.Compact(&value, p.Aspect); err != nil {
		return nil, fmt.Errorf("datahub: aspect %s of %s: %w", p.AspectName, p.EntityURN, err)
	}
	return marshal(ingestBody{Proposal: ingestProposal{
		EntityType: p.EntityType,
		EntityURN:  p.EntityURN,
		ChangeType: ChangeType,
		AspectName: p.AspectName,
		Aspect:     genericAspect{Value: value.String(), ContentType: contentType},
	}}, "")
}

// WriteFile writes ps to w as the JSON array DataHub's file source reads, one object per
// proposal, {"entityType", "entityUrn", "changeType": "UPSERT", "aspectName", "aspect":
// {"json": {...}}}, indented as DataHub's own files are. The bytes depend only on ps. Writer
// errors are returned wrapped.
func WriteFile(w io.Writer, ps []Proposal) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, p := range ps {
		if err := p.check(); err != nil {
			return err
		}
		b, err := marshal(fileProposal{
			EntityType: p.EntityType,
			EntityURN:  p.EntityURN,
			ChangeType: ChangeType,
			AspectName: p.AspectName,
			Aspect:     fileAspect{JSON: p.Aspect},
		}, "    ")
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
		buf.Write(b)
	}
	if len(ps) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("datahub: writing the proposals: %w", err)
	}
	return nil
}

// marshal encodes v as JSON without HTML escaping (view definitions keep their "<" and ">"),
// indented by indent when it is not empty, without a trailing newline.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("datahub: encoding JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseFileProposal reads back one element of the array WriteFile writes (as the agent wrote it,
// possibly with its strings redacted since): the proposal a push sends to GMS.
func ParseFileProposal(b []byte) (Proposal, error) {
	var fp fileProposal
	if err := json.Unmarshal(b, &fp); err != nil {
		return Proposal{}, fmt.Errorf("datahub: a proposal of the file is not valid JSON: %w", err)
	}
	if fp.ChangeType != ChangeType {
		return Proposal{}, fmt.Errorf("datahub: a proposal of the file has change type %q, not %s", fp.ChangeType, ChangeType)
	}
	p := Proposal{EntityType: fp.EntityType, EntityURN: fp.EntityURN, AspectName: fp.AspectName, Aspect: fp.Aspect.JSON}
	if err := p.check(); err != nil {
		return Proposal{}, err
	}
	return p, nil
}
