package githubtest

import (
	"errors"
	"net/http"
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
