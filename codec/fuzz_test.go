package codec

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// FuzzDecode hands the codec arbitrary ciphertext and key ids: it must refuse, never panic, and
// never return a payload it did not authenticate. The only ciphertexts that can decode are the
// seed's own (sealed with k1 over the payload "x"); any other bytes that decoded would be a forgery.
func FuzzDecode(f *testing.F) {
	keys, err := ParseKeys("k1:" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if err != nil {
		f.Fatal(err)
	}
	c := NewPayloadCodec(keys)
	good, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(good[0].Data), "k1")
	f.Add([]byte{}, "k1")
	f.Add(bytes.Repeat([]byte{1}, 40), "k2")
	f.Fuzz(func(t *testing.T, data []byte, keyID string) {
		p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(EncodingEncrypted), MetadataKeyID: []byte(keyID)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{p})
		if err == nil && (keyID != "k1" || len(out) != 1 || string(out[0].GetData()) != `"x"`) {
			t.Fatalf("decoded unauthenticated data %x with key id %q into %v", data, keyID, out)
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("a refusal without a message for %x", data)
		}
	})
}
