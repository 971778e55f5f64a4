package githubtest

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimit is what the fake counts of an installation's requests, to
// answer GitHub's rate-limit headers, the window starting at its first
// request.
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

// countRequest counts one request of inst against its rate limit and sets
// the X-RateLimit-* headers GitHub sends with every answer. s.mu is held.
func (s *Server) countRequest(w http.ResponseWriter, inst int64) {
	now := time.Now()
	rl, ok := s.rates[inst]
	if !ok || !now.Before(rl.reset) {
		rl = &rateLimit{reset: now.Add(time.Hour).Truncate(time.Second)}
		s.rates[inst] = rl
	}
	rl.used++
	limit := s.installationLimit(inst)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-rl.used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(rl.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// RateLimitRemaining is how many requests installation inst has left in
// its current window, as the fake last told it.
func (s *Server) RateLimitRemaining(inst int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.installationLimit(inst)
	if rl, ok := s.rates[inst]; ok {
		return max(limit-rl.used, 0)
	}
	return limit
}
