package githubtest

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimit is what the fake counts of an installation's requests, to
// answer GitHub's rate-limit headers (GitHub's hourly limit unless
// LimitRate says otherwise), the window starting at its first request.
type rateLimit struct {
	used  int
	reset time.Time
}

// GitHub's primary rate limit for an installation: 5,000 requests an
// hour, 50 more for each repository past 20, at most 12,500
// (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
const (
	rateLimitPerHour    = 5000
	rateLimitPerRepo    = 50
	rateLimitFreeRepos  = 20
	rateLimitMaxPerHour = 12500
)

// installationLimit is inst's requests an hour. s.mu is held.
func (s *Server) installationLimit(inst int64) int {
	repos := 0
	for _, r := range s.repos {
		if r.installationID == inst {
			repos++
		}
	}
	return min(rateLimitPerHour+rateLimitPerRepo*max(repos-rateLimitFreeRepos, 0), rateLimitMaxPerHour)
}

// rateRule is the primary rate limit the fake enforces (LimitRate).
type rateRule struct {
	requests int
	window   time.Duration
	refused  int
}

// LimitRate makes the fake enforce GitHub's primary rate limit with
// requests per window for each installation instead of announcing 5,000 an
// hour and never enforcing it: the answer that spends the last request
// says X-RateLimit-Remaining 0 (and succeeds), and a request past it is
// answered 403 with X-RateLimit-Remaining 0 and X-RateLimit-Reset, as
// GitHub does, and does nothing.
func (s *Server) LimitRate(requests int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateRule = &rateRule{requests: requests, window: window}
	clear(s.rates)
}

// RateLimited counts the requests LimitRate refused.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateRule == nil {
		return 0
	}
	return s.rateRule.refused
}

// limitOf is inst's limit and its window: LimitRate's, or GitHub's hourly
// one. s.mu is held.
func (s *Server) limitOf(inst int64) (int, time.Duration) {
	if s.rateRule != nil {
		return s.rateRule.requests, s.rateRule.window
	}
	return s.installationLimit(inst), time.Hour
}

// countRequest counts one request of inst against its rate limit and sets
// the X-RateLimit-* headers GitHub sends with every answer. It reports
// whether the request is past an enforced limit. s.mu is held.
func (s *Server) countRequest(w http.ResponseWriter, inst int64) (over bool) {
	limit, window := s.limitOf(inst)
	now := time.Now()
	rl, ok := s.rates[inst]
	if !ok || !now.Before(rl.reset) {
		// GitHub's reset is in whole seconds; the window ends then.
		rl = &rateLimit{reset: now.Add(window).Truncate(time.Second)}
		s.rates[inst] = rl
	}
	over = s.rateRule != nil && rl.used >= limit
	if over {
		s.rateRule.refused++
	} else {
		rl.used++
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-rl.used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(rl.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	return over
}

// RateLimitRemaining is how many requests installation inst has left in
// its current window, as the fake last told it.
func (s *Server) RateLimitRemaining(inst int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit, _ := s.limitOf(inst)
	if rl, ok := s.rates[inst]; ok {
		return max(limit-rl.used, 0)
	}
	return limit
}
