package datahub

import (
	"crypto/md5"
	"encoding/hex"
	"testing"
)

// md5Hex is the container GUID computed by hand: the MD5 of the key's JSON, in lower-case hex.
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestContainerGUID compares containerGUID with GUIDs computed by hand from the JSON text
// mcp_builder hashes: datahub_guid(key.guid_dict()) is the MD5 of json.dumps(guid_dict,
// separators=(",", ":"), sort_keys=True), and the guid_dict of the DatabaseKey and SchemaKey
// DataHub's SQL sources build holds platform, database, schema and, for want of a platform
// instance, the env under "instance" (backcompat_env_as_instance).
func TestContainerGUID(t *testing.T) {
	cases := []struct {
		key      map[string]string
		json     string
		wantGUID string // when known from elsewhere
	}{
		{
			// DataHub's own PostgreSQL source, in its integration test's golden file
			// (metadata-ingestion/tests/integration/postgres/postgres_mces_with_db_golden.json),
			// names database postgrestest's container urn:li:container:a6097853edba03be190d99ece4b307ff.
			key:      map[string]string{"platform": "postgres", "instance": "PROD", "database": "postgrestest"},
			json:     `{"database":"postgrestest","instance":"PROD","platform":"postgres"}`,
			wantGUID: "a6097853edba03be190d99ece4b307ff",
		},
		{
			// ... and its schema public urn:li:container:51904fc8cd5cc729bc630decff284525.
			key:      map[string]string{"platform": "postgres", "instance": "PROD", "database": "postgrestest", "schema": "public"},
			json:     `{"database":"postgrestest","instance":"PROD","platform":"postgres","schema":"public"}`,
			wantGUID: "51904fc8cd5cc729bc630decff284525",
		},
		{
			key:  map[string]string{"platform": "mysql", "instance": "PROD", "database": "appdb"},
			json: `{"database":"appdb","instance":"PROD","platform":"mysql"}`,
		},
		{
			// Python escapes everything outside printable ASCII (ensure_ascii), a character above
			// U+FFFF as a surrogate pair; json.dumps gives exactly this text for this key.
			key:      map[string]string{"platform": "postgres", "instance": "PROD", "database": "café\x7f\"<x>\n😀", "schema": "p"},
			json:     `{"database":"caf\u00e9\u007f\"<x>\n\ud83d\ude00","instance":"PROD","platform":"postgres","schema":"p"}`,
			wantGUID: "fab7e319eb7c7d5c782d7683bfa1b26f",
		},
	}
	for _, tc := range cases {
		if got := keyJSON(tc.key); got != tc.json {
			t.Errorf("keyJSON(%v) = %s, want %s", tc.key, got, tc.json)
		}
		byHand := md5Hex(tc.json)
		if tc.wantGUID != "" && byHand != tc.wantGUID {
			t.Fatalf("MD5 of %s is %s, want %s: the test's premise is wrong", tc.json, byHand, tc.wantGUID)
		}
		if got := containerGUID(tc.key); got != byHand {
			t.Errorf("containerGUID(%v) = %s, want %s", tc.key, got, byHand)
		}
	}
}

func TestURNs(t *testing.T) {
	ds := datasetURN("postgres", "shop.public.odd,name(1)", "PROD")
	if want := "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.odd%2Cname%281%29,PROD)"; ds != want {
		t.Errorf("datasetURN = %s, want %s", ds, want)
	}
	if got, want := schemaFieldURN(ds, "a,b (c)"), "urn:li:schemaField:("+ds+",a%2Cb %28c%29)"; got != want {
		t.Errorf("schemaFieldURN = %s, want %s", got, want)
	}
	if got := corpuserURN("alice"); got != "urn:li:corpuser:alice" {
		t.Errorf("corpuserURN = %s", got)
	}
}
