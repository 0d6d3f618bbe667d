// Package codec encrypts Temporal payloads end to end, so that workflow inputs, results,
// heartbeats, memos, query results and failure messages reach the Temporal service only as
// AES-256-GCM ciphertext, and serves the same codec over HTTP (Temporal's remote codec protocol)
// so that the Temporal Web UI and the temporal CLI can show them decrypted to people who hold the
// codec server's token or are allowed by its OIDC settings.
//
// Keys: a [Keys] set holds one or more AES-256 keys, each with an id. The first key encrypts; every
// key decrypts, which is how keys rotate: put the new key first and keep the old one after it
// until no history that needs it is retained. Keys come from SECURE_AGENT_CODEC_KEYS
// ([ParseKeys]: "id1:<base64 32 bytes>,id2:<base64 32 bytes>") or from a file ([LoadKeysFile]: the
// same entries, one per line, "#" comments, the file mode 0600 or 0400).
//
// Payload format ([NewPayloadCodec]): the whole original payload (metadata and data) is marshalled
// as a protobuf message and sealed with AES-256-GCM under a random 96-bit nonce, with the key id as
// additional authenticated data. The encoded payload has the metadata
//
//	encoding:          binary/encrypted
//	encryption-key-id: <key id>
//
// and the data nonce (12 bytes) followed by the ciphertext and the 16-byte GCM tag. Decoding passes
// payloads without "binary/encrypted" through unchanged (input started from the Web UI or the CLI
// without a codec stays readable) and refuses an unknown key id, a wrong key or any tampering with
// an error that names the key id and carries no payload bytes.
//
// What Temporal never encrypts: workflow and activity type names, workflow ids, run ids, activity
// ids, task queue names, search attributes, timer ids, signal, query and update names, and the
// namespace. None of those may carry a secret or a customer identifier.
//
// Clients: [ClientOptions] returns the data converter and the failure converter to put into
// client.Options. The failure converter moves error messages and stack traces into the encoded
// (hence encrypted) attributes of a failure.
//
// Server: [NewServer] serves POST /encode and /decode (and /{namespace}/encode,
// /{namespace}/decode) behind a required bearer token, with CORS for the Web UI's origin only.
// The token is a static one ([ServerOptions].Token), or an OIDC access token that the Web UI
// forwards from its single sign-on, checked by an [OIDCVerifier] against the issuer's key set,
// issuer, audience, expiry and an allowlist of subjects or groups.
package codec
