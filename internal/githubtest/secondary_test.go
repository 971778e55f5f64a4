package githubtest

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
)

func TestSecondaryLimit(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	// Two comments (10 points) and a read (1) fit; the third comment does not.
	st.s.LimitSecondary(11, time.Hour)
	body := "hello"
	for range 2 {
		if _, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: &body}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.gh.Issues.ListComments(ctx, "octo", "app", 1, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: &body})
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.Response.StatusCode != http.StatusForbidden || abuse.RetryAfter == nil {
		t.Fatalf("third comment: %v, want 403 with Retry-After as a secondary limit", err)
	}
	if d := *abuse.RetryAfter; d < 59*time.Minute || d > time.Hour {
		t.Errorf("Retry-After %v, want what is left of the hour", d)
	}
	if n := len(st.repo.Comments(1)); n != 2 {
		t.Errorf("%d comments, want the 2 within the limit", n)
	}
	if n := st.s.SecondaryLimited(); n != 1 {
		t.Errorf("SecondaryLimited = %d, want 1", n)
	}
}

func TestLimitRate(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	st.s.LimitRate(2, time.Hour)
	body := "hello"
	_, resp, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: &body})
	if err != nil || resp.Rate.Remaining != 1 {
		t.Fatalf("first comment: %v, remaining %d; want it made, 1 left", err, resp.Rate.Remaining)
	}
	// The request that spends the limit succeeds and says so.
	_, resp, err = st.gh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: &body})
	if err != nil || resp.Rate.Remaining != 0 || resp.Rate.Reset.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("second comment: %v, rate %+v; want it made, 0 left until the hour's end", err, resp.Rate)
	}
	// go-github would refuse the next one itself; a fresh client asks.
	fresh := st.s.InstallationClient(t, DefaultInstallationID)
	_, _, err = fresh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: &body})
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Response.StatusCode != http.StatusForbidden || rl.Rate.Remaining != 0 {
		t.Fatalf("third comment: %v, want 403 for the spent rate limit", err)
	}
	if n := len(st.repo.Comments(1)); n != 2 {
		t.Errorf("%d comments, want the 2 within the limit", n)
	}
	if n := st.s.RateLimited(); n != 1 {
		t.Errorf("RateLimited = %d, want 1", n)
	}
}

func TestMaxInFlight(t *testing.T) {
	st := newSetup(t)
	st.s.SetLatency(50 * time.Millisecond)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if inst, all := st.s.MaxInFlight(DefaultInstallationID); inst != 3 || all != 3 {
		t.Errorf("MaxInFlight = %d, %d; want the 3 concurrent requests", inst, all)
	}
	if inst, _ := st.s.MaxInFlight(DefaultInstallationID + 1); inst != 0 {
		t.Errorf("another installation had %d in flight, want 0", inst)
	}
}
