package main

import (
	"encoding/base64"
	"maps"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/codec"
)

// TestSumRunning: the progress line adds the running counts of the pending extraction batches'
// heartbeats, decoded with the agent's codec when payloads are encrypted; other activities, and
// heartbeats it cannot decode, add nothing.
func TestSumRunning(t *testing.T) {
	keys, err := codec.ParseKeys("k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))))
	if err != nil {
		t.Fatal(err)
	}
	encrypted, _ := codec.ClientOptions(keys)
	plain := converter.GetDefaultDataConverter()
	beat := func(dc converter.DataConverter, running map[string]int64) *commonpb.Payloads {
		p, err := dc.ToPayloads(activities.Cursor{Counts: map[string]int64{}, Running: running})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pending := func(activity string, details *commonpb.Payloads) *workflowpb.PendingActivityInfo {
		return &workflowpb.PendingActivityInfo{ActivityType: &commonpb.ActivityType{Name: activity}, HeartbeatDetails: details}
	}
	list := []*workflowpb.PendingActivityInfo{
		pending("ExtractSchemas", beat(encrypted, map[string]int64{"tables": 40, "columns": 300})),
		pending("ExtractSchemas", beat(encrypted, map[string]int64{"tables": 2})),
		pending("ExtractSchemas", nil),
		pending("Finalize", beat(encrypted, map[string]int64{"tables": 1000})),
	}
	if got, want := sumRunning(list, encrypted), map[string]int64{"tables": 42, "columns": 300}; !maps.Equal(got, want) {
		t.Errorf("with the codec: %v, want %v", got, want)
	}
	if got := sumRunning(list, plain); len(got) != 0 {
		t.Errorf("without the codec's keys, encrypted heartbeats were read: %v", got)
	}
	if got := withRunning(map[string]int64{"tables": 100}, map[string]int64{"tables": 42, "columns": 300}); !maps.Equal(got, map[string]int64{"tables": 142, "columns": 300}) {
		t.Errorf("withRunning: %v", got)
	}
}
