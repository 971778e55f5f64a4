package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/server"
)

// TestRefusesALockTooShortToStopAStep refuses to start when a stage's run
// cut off from Redis could not stop its step before its stage lock passes
// to another process.
func TestRefusesALockTooShortToStopAStep(t *testing.T) {
	t.Parallel()
	_, err := server.New(t.Context(), config.Env{}, zerolog.Nop(), server.Options{
		Engine: engine.Options{LockTTL: 10 * time.Second, Grace: 10 * time.Second},
	})
	if err == nil || !strings.Contains(err.Error(), "stage lock") || !strings.Contains(err.Error(), "must exceed") {
		t.Errorf("New = %v, want a refusal naming the stage lock's timings", err)
	}
}
