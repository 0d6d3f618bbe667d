package workflows

import "testing"

func TestEvenBatchSize(t *testing.T) {
	for _, c := range []struct{ schemas, concurrent, want int }{
		{0, 4, 1}, {1, 4, 1}, {4, 4, 1}, {5, 4, 2}, {51, 4, 13}, {52, 4, 13}, {53, 4, 14},
		{100, 4, 25}, {101, 4, 25}, {5000, 4, 25}, {51, 1, 25}, {51, 64, 1}, {7, 0, 7},
	} {
		if got := evenBatchSize(c.schemas, c.concurrent); got != c.want {
			t.Errorf("evenBatchSize(%d, %d) = %d, want %d", c.schemas, c.concurrent, got, c.want)
		}
	}
	// The batches of 51 schemas on four slots: one round of four.
	if b := makeBatches(make([]string, 51), evenBatchSize(51, 4)); len(b) != 4 {
		t.Errorf("51 schemas in %d batches, want 4", len(b))
	}
}
