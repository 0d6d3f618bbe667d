package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// canary is a plaintext that must never show up outside the process in the clear.
const canary = "CANARY-s3cr3t-7f3a9c"

// samplePayloads makes payloads of several kinds with the default data converter.
func samplePayloads(t *testing.T) []*commonpb.Payload {
	t.Helper()
	type spec struct {
		Password string            `json:"password"`
		Fields   map[string]string `json:"fields"`
	}
	values := []any{
		spec{Password: canary, Fields: map[string]string{"user": "app"}},
		"plain string " + canary,
		[]byte("raw bytes " + canary),
		nil,
		42,
		strings.Repeat("x", 200_000) + canary,
		"",
	}
	var out []*commonpb.Payload
	for _, v := range values {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// wire is what leaves the process for a set of payloads.
func wire(t *testing.T, payloads []*commonpb.Payload) []byte {
	t.Helper()
	b, err := proto.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode(t *testing.T, keys *Keys, payloads []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	enc, err := NewPayloadCodec(keys).Encode(payloads)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestRoundTrip(t *testing.T) {
	_, k1 := newKey(t)
	keys := mustKeys(t, "k1:"+k1)
	c := NewPayloadCodec(keys)
	orig := samplePayloads(t)
	enc, err := c.Encode(orig)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != len(orig) {
		t.Fatalf("%d payloads encoded, want %d", len(enc), len(orig))
	}
	for i, p := range enc {
		if got := string(p.Metadata[MetadataEncoding]); got != EncodingEncrypted {
			t.Fatalf("payload %d encoding = %q", i, got)
		}
		if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
			t.Fatalf("payload %d key id = %q", i, got)
		}
		if len(p.Metadata) != 2 {
			t.Fatalf("payload %d metadata has %d entries, want only encoding and key id", i, len(p.Metadata))
		}
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if !proto.Equal(orig[i], dec[i]) {
			t.Fatalf("payload %d: decoded %v, want %v", i, dec[i], orig[i])
		}
	}
	// The inputs are not modified.
	if string(orig[0].Metadata[MetadataEncoding]) != converter.MetadataEncodingJSON {
		t.Fatal("Encode modified its input")
	}
	// Same plaintext twice: different ciphertexts (fresh nonces).
	again, _ := c.Encode(orig[:1])
	if bytes.Equal(again[0].Data, enc[0].Data) || bytes.Equal(again[0].Data[:nonceSize], enc[0].Data[:nonceSize]) {
		t.Fatal("two encodings of one payload share a nonce or ciphertext")
	}
	// Empty and nil lists.
	for _, in := range [][]*commonpb.Payload{nil, {}} {
		if out, err := c.Encode(in); err != nil || len(out) != 0 {
			t.Fatalf("Encode(%v) = %v, %v", in, out, err)
		}
		if out, err := c.Decode(in); err != nil || len(out) != 0 {
			t.Fatalf("Decode(%v) = %v, %v", in, out, err)
		}
	}
}

func TestDataConverterRoundTrip(t *testing.T) {
	_, k1 := newKey(t)
	dc, fc := ClientOptions(mustKeys(t, "k1:"+k1))
	type input struct{ Secret string }
	p, err := dc.ToPayloads(input{Secret: canary}, 7, "x")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire(t, p.Payloads), []byte(canary)) {
		t.Fatal("canary in the data converter's payloads")
	}
	var in input
	var n int
	var s string
	if err := dc.FromPayloads(p, &in, &n, &s); err != nil {
		t.Fatal(err)
	}
	if in.Secret != canary || n != 7 || s != "x" {
		t.Fatalf("got %v %d %q", in, n, s)
	}

	// Failures: message and stack trace go into the encrypted attributes; the type stays.
	appErr := temporal.NewNonRetryableApplicationError("connecting with password "+canary, "InvalidInput", nil)
	f := fc.ErrorToFailure(appErr)
	fb, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(fb, []byte(canary)) {
		t.Fatal("canary in the failure proto")
	}
	if f.GetEncodedAttributes() == nil || string(f.GetEncodedAttributes().Metadata[MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("failure attributes not encrypted: %v", f.GetEncodedAttributes())
	}
	back := fc.FailureToError(f)
	if !strings.Contains(back.Error(), canary) {
		t.Fatalf("decoded failure %q lost its message", back)
	}
	var got *temporal.ApplicationError
	if !errors.As(back, &got) || got.Type() != "InvalidInput" {
		t.Fatalf("decoded failure %v lost its type", back)
	}
}

// TestCanary: the canary is nowhere in the encoded payloads' bytes (in any common encoding), nor
// in the errors of any failed decode.
func TestCanary(t *testing.T) {
	raw1, k1 := newKey(t)
	raw2, k2 := newKey(t)
	keys := mustKeys(t, "k1:"+k1)
	enc := encode(t, keys, samplePayloads(t))
	b := wire(t, enc)
	for _, form := range []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), fmt.Sprintf("%x", canary)} {
		if bytes.Contains(b, []byte(form)) {
			t.Fatalf("encoded payloads contain %q", form)
		}
	}
	for _, leak := range []string{"json/plain", "binary/plain", "binary/null"} {
		if bytes.Contains(b, []byte(leak)) {
			t.Fatalf("encoded payloads show the original encoding %q", leak)
		}
	}
	assertNoKeyMaterial(t, "encoded payloads", string(b), raw1)

	// Every way decoding can fail; none may say the canary or a key.
	var errs []error
	wrong := mustKeys(t, "k1:"+k2)
	_, err := NewPayloadCodec(wrong).Decode(enc)
	errs = append(errs, err)
	for _, mutate := range []func(p *commonpb.Payload){
		func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		func(p *commonpb.Payload) { p.Data[0] ^= 1 },
		func(p *commonpb.Payload) { p.Data = p.Data[:5] },
		// Key ids are cleartext metadata and errors name them, but only well-formed ones.
		func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte(canary + " not an id") },
		func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) },
	} {
		tampered := clonePayloads(enc)
		mutate(tampered[0])
		_, err := NewPayloadCodec(keys).Decode(tampered)
		errs = append(errs, err)
	}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		if strings.Contains(err.Error(), canary) || strings.Contains(fmt.Sprintf("%+v", err), canary) {
			t.Fatalf("case %d: error shows the canary: %v", i, err)
		}
		assertNoKeyMaterial(t, "error", err.Error(), raw1, raw2)
	}
}

func clonePayloads(ps []*commonpb.Payload) []*commonpb.Payload {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		out[i] = proto.Clone(p).(*commonpb.Payload)
	}
	return out
}

func TestDecodeFailures(t *testing.T) {
	raw, k1 := newKey(t)
	_, k2 := newKey(t)
	keys := mustKeys(t, "k1:"+k1)
	enc := encode(t, keys, samplePayloads(t)[:2])

	check := func(t *testing.T, c converter.PayloadCodec, in []*commonpb.Payload, sentinel error, has ...string) {
		t.Helper()
		out, err := c.Decode(in)
		if err == nil {
			t.Fatalf("decoded to %v, want an error", out)
		}
		if !errors.Is(err, sentinel) {
			t.Fatalf("err = %v, want %v", err, sentinel)
		}
		for _, h := range has {
			if !strings.Contains(err.Error(), h) {
				t.Fatalf("error %q does not contain %q", err, h)
			}
		}
		for _, p := range out {
			if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
				t.Fatal("a failed decode returned decrypted data")
			}
		}
	}

	t.Run("wrong key", func(t *testing.T) {
		check(t, NewPayloadCodec(mustKeys(t, "k1:"+k2)), enc, ErrDecryptionFailed, `key id "k1"`, "payload 1 of 2", "wrong key")
	})
	t.Run("unknown key id", func(t *testing.T) {
		check(t, NewPayloadCodec(mustKeys(t, "k9:"+k1)), enc, ErrUnknownKeyID, `key id "k1" is not configured`, "k9")
	})
	t.Run("tampered ciphertext", func(t *testing.T) {
		in := clonePayloads(enc)
		in[1].Data[nonceSize+3] ^= 0x80
		check(t, NewPayloadCodec(keys), in, ErrDecryptionFailed, `key id "k1"`, "payload 2 of 2")
	})
	t.Run("tampered tag", func(t *testing.T) {
		in := clonePayloads(enc)
		in[0].Data[len(in[0].Data)-1] ^= 1
		check(t, NewPayloadCodec(keys), in, ErrDecryptionFailed, `key id "k1"`)
	})
	t.Run("tampered nonce", func(t *testing.T) {
		in := clonePayloads(enc)
		in[0].Data[0] ^= 1
		check(t, NewPayloadCodec(keys), in, ErrDecryptionFailed, `key id "k1"`)
	})
	t.Run("truncated", func(t *testing.T) {
		in := clonePayloads(enc)
		in[0].Data = in[0].Data[:nonceSize+10]
		check(t, NewPayloadCodec(keys), in, ErrDecryptionFailed, "too short")
	})
	t.Run("key id swapped to another key", func(t *testing.T) {
		two := mustKeys(t, "k1:"+k1+",k2:"+k2)
		in := clonePayloads(enc)
		in[0].Metadata[MetadataKeyID] = []byte("k2")
		check(t, NewPayloadCodec(two), in, ErrDecryptionFailed, `key id "k2"`)
	})
	t.Run("key id swapped, same key material (additional data)", func(t *testing.T) {
		// k1 and alias hold the same key: only the additional data tells them apart.
		same := mustKeys(t, "k1:"+k1+",alias:"+k1)
		in := clonePayloads(enc)
		in[0].Metadata[MetadataKeyID] = []byte("alias")
		check(t, NewPayloadCodec(same), in, ErrDecryptionFailed, `key id "alias"`)
	})
	t.Run("key id missing", func(t *testing.T) {
		in := clonePayloads(enc)
		delete(in[0].Metadata, MetadataKeyID)
		check(t, NewPayloadCodec(keys), in, ErrUnknownKeyID, "no encryption-key-id")
	})
	t.Run("key id not an id", func(t *testing.T) {
		in := clonePayloads(enc)
		in[0].Metadata[MetadataKeyID] = []byte("bad id\n")
		check(t, NewPayloadCodec(keys), in, ErrUnknownKeyID, "not a valid key id")
	})
	t.Run("encrypted garbage", func(t *testing.T) {
		// A valid GCM seal of bytes that are not a payload proto.
		a, _ := keys.aead("k1")
		nonce := make([]byte, nonceSize)
		data := a.Seal(append([]byte(nil), nonce...), nonce, []byte{0xff, 0xff, 0xff}, []byte("k1"))
		in := []*commonpb.Payload{{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("k1")}, Data: data}}
		check(t, NewPayloadCodec(keys), in, ErrDecryptionFailed, "not a Temporal payload")
	})
	_ = raw
}

func TestRotation(t *testing.T) {
	_, oldKey := newKey(t)
	_, newKey := newKey(t)
	before := mustKeys(t, "old:"+oldKey)
	after := mustKeys(t, "new:"+newKey+",old:"+oldKey)
	orig := samplePayloads(t)[:2]

	written := encode(t, before, orig)
	dec, err := NewPayloadCodec(after).Decode(written)
	if err != nil {
		t.Fatalf("rotated keys do not read the old key's payloads: %v", err)
	}
	if !proto.Equal(dec[0], orig[0]) {
		t.Fatal("old payload decoded wrong")
	}

	rewritten := encode(t, after, orig)
	if id := string(rewritten[0].Metadata[MetadataKeyID]); id != "new" {
		t.Fatalf("after rotation encrypted with %q, want new", id)
	}
	if dec, err := NewPayloadCodec(after).Decode(rewritten); err != nil || !proto.Equal(dec[1], orig[1]) {
		t.Fatalf("new payload: %v", err)
	}
	// A reader that was not given the new key says which key it lacks.
	_, err = NewPayloadCodec(before).Decode(rewritten)
	if !errors.Is(err, ErrUnknownKeyID) || !strings.Contains(err.Error(), `"new"`) {
		t.Fatalf("err = %v", err)
	}
	// Mixed history: old and new payloads in one list.
	mixed := []*commonpb.Payload{written[0], rewritten[1]}
	if _, err := NewPayloadCodec(after).Decode(mixed); err != nil {
		t.Fatal(err)
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	_, k1 := newKey(t)
	c := NewPayloadCodec(mustKeys(t, "k1:"+k1))
	plain := samplePayloads(t)
	plain = append(plain,
		&commonpb.Payload{},
		&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/protobuf"), "messageType": []byte("x.Y")}, Data: []byte(`{}`)},
		&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted-by-someone-else")}, Data: []byte("zz")},
		nil,
	)
	mixed := append(encode(t, mustKeys(t, "k1:"+k1), plain[:1]), plain...)
	dec, err := c.Decode(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec[0], plain[0]) {
		t.Fatal("encrypted payload in a mixed list decoded wrong")
	}
	for i, p := range plain {
		if dec[i+1] != p {
			t.Fatalf("plain payload %d was not passed through unchanged", i)
		}
	}
	// The UI/CLI case: input started without the codec is readable by a worker with it.
	dc := DataConverter(mustKeys(t, "k1:"+k1))
	p, _ := converter.GetDefaultDataConverter().ToPayload(map[string]string{"connector": "sqlite"})
	var got map[string]string
	if err := dc.FromPayload(p, &got); err != nil || got["connector"] != "sqlite" {
		t.Fatalf("plain input: %v %v", got, err)
	}
}

func TestNewPayloadCodecNeedsKeys(t *testing.T) {
	for _, k := range []*Keys{nil, {}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("NewPayloadCodec(%v) did not panic", k)
				}
			}()
			NewPayloadCodec(k)
		}()
	}
}
