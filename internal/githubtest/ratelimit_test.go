package githubtest

import (
	"fmt"
	"testing"
)

// TestRateLimitGrowsWithRepositories: an installation's primary rate
// limit is 5,000 requests an hour, 50 more for each repository past 20,
// at most 12,500, as GitHub documents; the headers count down from it.
func TestRateLimitGrowsWithRepositories(t *testing.T) {
	for _, c := range []struct {
		repos, want int
	}{{1, 5000}, {20, 5000}, {30, 5500}, {200, 12500}} {
		t.Run(fmt.Sprint(c.repos, " repositories"), func(t *testing.T) {
			s := newServer(t)
			const inst = 77
			s.AddRepo("other/repo", "main") // another installation's: not counted
			for i := range c.repos {
				s.AddRepo(fmt.Sprintf("octo/repo-%d", i), "main").SetInstallation(inst)
			}
			if got := s.RateLimitRemaining(inst); got != c.want {
				t.Errorf("before any request %d remain, want %d", got, c.want)
			}
			_, resp, err := s.InstallationClient(t, inst).Repositories.Get(t.Context(), "octo", "repo-0")
			if err != nil {
				t.Fatal(err)
			}
			if resp.Rate.Limit != c.want || resp.Rate.Remaining != c.want-1 {
				t.Errorf("X-RateLimit-Limit %d, -Remaining %d; want %d, %d", resp.Rate.Limit, resp.Rate.Remaining, c.want, c.want-1)
			}
		})
	}
}
