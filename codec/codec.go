package codec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// MetadataEncoding is the payload metadata key Temporal uses for the encoding.
	MetadataEncoding = converter.MetadataEncoding
	// EncodingEncrypted is the encoding of a payload this codec encrypted.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID is the metadata key that names the key that encrypted a payload.
	MetadataKeyID = "encryption-key-id"
)

// nonceSize is GCM's standard 96-bit nonce.
const nonceSize = 12

var (
	// ErrUnknownKeyID: a payload was encrypted under a key id that is not configured (or without
	// a valid key id).
	ErrUnknownKeyID = errors.New("unknown codec key id")
	// ErrDecryptionFailed: a payload does not decrypt: wrong key for its id, or the payload or its
	// key id was tampered with, or it is not in this codec's format.
	ErrDecryptionFailed = errors.New("payload decryption failed")
)

// payloadCodec is AES-256-GCM over whole payloads.
type payloadCodec struct{ keys *Keys }

// NewPayloadCodec returns a codec that encrypts every payload under the active key of keys, and
// decrypts payloads encrypted under any of them.
//
// Encode marshals the whole payload (metadata and data) and seals it with AES-256-GCM under a
// fresh random 96-bit nonce, with the key id as additional data (so a payload relabelled with
// another key id does not decrypt, even if both ids name the same key). The result has the
// metadata encoding: binary/encrypted and encryption-key-id: <id>, and the data
// nonce || ciphertext || tag.
//
// Decode passes through payloads whose encoding is not binary/encrypted, unchanged. For encrypted
// ones, an unknown key id (ErrUnknownKeyID) or any failure to authenticate and decrypt
// (ErrDecryptionFailed) is an error that names the key id and the payload's position, and never
// carries payload bytes.
//
// It panics if keys is nil or empty (only ParseKeys and LoadKeysFile make a usable Keys).
func NewPayloadCodec(keys *Keys) converter.PayloadCodec {
	if keys == nil || len(keys.ids) == 0 {
		panic("codec.NewPayloadCodec: no keys (use ParseKeys or LoadKeysFile)")
	}
	return &payloadCodec{keys: keys}
}

// Encode implements converter.PayloadCodec.
func (c *payloadCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.keys.ActiveID()
	aead, _ := c.keys.aead(id)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil {
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: encrypting payload %d of %d: the payload does not marshal", i+1, len(payloads))
		}
		buf := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
		if _, err := rand.Read(buf); err != nil {
			clear(plain)
			return payloads, fmt.Errorf("codec: encrypting payload %d of %d: no random nonce: %w", i+1, len(payloads), err)
		}
		sealed := aead.Seal(buf, buf[:nonceSize], plain, []byte(id))
		clear(plain)
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:    []byte(id),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (c *payloadCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		d, err := c.decrypt(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d of %d: %w", i+1, len(payloads), err)
		}
		out[i] = d
	}
	return out, nil
}

func (c *payloadCodec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	rawID, ok := p.GetMetadata()[MetadataKeyID]
	if !ok {
		return nil, fmt.Errorf("%w: the encrypted payload has no %s metadata", ErrUnknownKeyID, MetadataKeyID)
	}
	id := string(rawID)
	if !validKeyID(id) {
		return nil, fmt.Errorf("%w: the encrypted payload's %s is not a valid key id", ErrUnknownKeyID, MetadataKeyID)
	}
	aead, ok := c.keys.aead(id)
	if !ok {
		return nil, fmt.Errorf("%w: key id %q is not configured here (configured: %s); add that key to %s or the keys file",
			ErrUnknownKeyID, id, strings.Join(c.keys.ids, ", "), EnvKeys)
	}
	data := p.GetData()
	if len(data) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w: key id %q: the ciphertext is too short", ErrDecryptionFailed, id)
	}
	plain, err := aead.Open(nil, data[:nonceSize], data[nonceSize:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q: wrong key for this id, or the payload or its key id was altered", ErrDecryptionFailed, id)
	}
	defer clear(plain)
	var orig commonpb.Payload
	if err := proto.Unmarshal(plain, &orig); err != nil {
		return nil, fmt.Errorf("%w: key id %q: the decrypted bytes are not a Temporal payload", ErrDecryptionFailed, id)
	}
	return &orig, nil
}

// DataConverter returns Temporal's default data converter with the payload codec of keys on top:
// every payload the client or worker writes is encrypted, every encrypted payload it reads is
// decrypted.
func DataConverter(keys *Keys) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), NewPayloadCodec(keys))
}

// FailureConverter returns Temporal's default failure converter over dc with
// EncodeCommonAttributes: error messages and stack traces move into the failure's encoded
// attributes, which dc encrypts; the plain message reads "Encoded failure". The failure type
// (an ApplicationError's type, such as InvalidInput) and the retryable flag stay in the clear.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// ClientOptions returns the data converter and failure converter for client.Options
// (DataConverter and FailureConverter); workers built on that client use them too.
func ClientOptions(keys *Keys) (converter.DataConverter, converter.FailureConverter) {
	dc := DataConverter(keys)
	return dc, FailureConverter(dc)
}
