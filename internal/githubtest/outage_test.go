package githubtest

import (
	"net/http"
	"testing"

	"github.com/google/go-github/v62/github"
)

func TestFailAllFailsEverythingUntilRestored(t *testing.T) {
	st := newSetup(t)
	// A token fetched before the outage; a fetch during it fails too.
	if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); err != nil {
		t.Fatal(err)
	}
	st.s.FailNext("POST", "/repos/octo/app/issues/1/comments", 1, http.StatusInternalServerError, nil)
	restore := st.s.FailAll(http.StatusBadGateway)
	body := "deployed"
	comment := func() error {
		_, _, err := st.gh.Issues.CreateComment(t.Context(), "octo", "app", 1, &github.IssueComment{Body: &body})
		return err
	}
	for range 3 {
		if err := comment(); statusOf(err) != http.StatusBadGateway {
			t.Fatalf("create during the outage: %v, want 502", err)
		}
	}
	if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); statusOf(err) != http.StatusBadGateway {
		t.Fatalf("get during the outage: %v, want 502", err)
	}

	restore()
	// The fault set before the outage is still there, once.
	if err := comment(); statusOf(err) != http.StatusInternalServerError {
		t.Fatalf("first create after the outage: %v, want the 500 set before it", err)
	}
	if err := comment(); err != nil {
		t.Fatalf("second create after the outage: %v", err)
	}
	if n := len(st.repo.Comments(1)); n != 1 {
		t.Errorf("%d comments, want only the one made after the outage", n)
	}
}
