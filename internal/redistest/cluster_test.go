package redistest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The cluster has three masters serving all slots, and keys with
// different hash tags land on different masters.
func TestClusterHasThreeMasters(t *testing.T) {
	c := Cluster(t)
	rdb := c.Client(t)
	masters := map[string]bool{}
	for _, tag := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		key := "{" + tag + "}:k"
		if err := rdb.Set(t.Context(), key, tag, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		masters[c.MasterOf(t, rdb, key)] = true
	}
	if len(masters) != Masters {
		t.Fatalf("keys landed on %d masters, want %d", len(masters), Masters)
	}
}
