package githubtest

import (
	"net/http"
	"testing"

	"github.com/google/go-github/v62/github"
)

func TestLostAnswersAreStillPerformed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		how    Loss
		status int // of the lost answer; 0: no answer at all
	}{
		{"502", Answer502, http.StatusBadGateway},
		{"dropped connection", DropConnection, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newSetup(t)
			st.s.LoseAnswers("POST", "/repos/octo/app/issues/1/comments", 1, tt.how)
			body := "deployed"
			_, _, err := st.gh.Issues.CreateComment(t.Context(), "octo", "app", 1, &github.IssueComment{Body: &body})
			if err == nil || statusOf(err) != tt.status {
				t.Fatalf("first create: %v (status %d), want status %d", err, statusOf(err), tt.status)
			}
			if _, _, err := st.gh.Issues.CreateComment(t.Context(), "octo", "app", 1, &github.IssueComment{Body: &body}); err != nil {
				t.Fatalf("second create: %v", err)
			}
			// The loss hit one request only, and both took effect.
			if n := len(st.repo.Comments(1)); n != 2 {
				t.Errorf("%d comments, want 2", n)
			}
		})
	}
}

func TestListCheckRunsForRef(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	create := func(name, sha, externalID string) int64 {
		t.Helper()
		c, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: name, HeadSHA: sha, ExternalID: &externalID})
		if err != nil {
			t.Fatal(err)
		}
		return c.GetID()
	}
	older := create("railyard/staging", st.second, "staging:1")
	newer := create("railyard/staging", st.second, "staging:2")
	create("railyard/prod", st.second, "prod:3")
	create("railyard/staging", st.first, "staging:4")

	for _, tt := range []struct {
		filter string
		want   []int64
	}{
		{"all", []int64{newer, older}},
		{"latest", []int64{newer}},
	} {
		list, _, err := st.gh.Checks.ListCheckRunsForRef(ctx, "octo", "app", "main", &github.ListCheckRunsOptions{
			CheckName: github.String("railyard/staging"), Filter: github.String(tt.filter), AppID: github.Int64(AppID),
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, c := range list.CheckRuns {
			got = append(got, c.GetID())
		}
		if len(got) != len(tt.want) || got[0] != tt.want[0] || list.GetTotal() != len(tt.want) {
			t.Errorf("filter=%s: ids %v (total %d), want %v", tt.filter, got, list.GetTotal(), tt.want)
		}
	}
}
