package server_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
)

// TestPeopleFirstAtIntake: a person's command never waits behind the bot's
// own intake work. Every intake worker is stuck on a push (GitHub holds
// the pipeline file) with more pushes queued behind them; a /status still
// gets its 👀 while those pushes wait, and everything goes through once
// GitHub answers.
func TestPeopleFirstAtIntake(t *testing.T) {
	t.Parallel()
	const pushes = 12 // more than the intake queue's workers
	h := newHarness(t, buildOnly)
	contents := "/repos/" + repoName + "/contents/"
	release := h.gh.Hold(http.MethodGet, contents)
	for range pushes {
		h.commitAndPush()
	}
	h.await("the push jobs to wait on GitHub", func() bool { return len(requestsTo(h, http.MethodGet, contents, time.Time{})) > 0 })

	intake := server.NewQueues(h.srv.Store().Redis, queue.Options{}).Intake
	command := 900000 + commentIDs.Add(1)
	h.deliverComment(command, user, "/status")
	h.await("the 👀 of the /status", func() bool { return slices.Contains(h.repo.Reactions(command), "eyes") })
	d, err := intake.Depth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Ready+d.Leased != pushes {
		t.Errorf("when the 👀 went out the intake queue held %+v, want all %d push jobs still there", d, pushes)
	}

	release()
	h.await("the reply to the /status", func() bool { return len(h.repo.Comments(1)) == 1 })
	h.await("every push job done", func() bool {
		d, err := intake.Depth(t.Context())
		return err == nil && d == queue.Depth{}
	})
}
