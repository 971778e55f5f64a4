package githubtest

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimit is what the fake counts of an installation's requests, to
// answer GitHub's rate-limit headers: 5,000 requests an hour, the window
// starting at its first request.
type rateLimit struct {
	used  int
	reset time.Time
}

const rateLimitPerHour = 5000

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
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(rateLimitPerHour))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(rateLimitPerHour-rl.used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(rl.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// RateLimitRemaining is how many requests installation inst has left in
// its current window, as the fake last told it.
func (s *Server) RateLimitRemaining(inst int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rl, ok := s.rates[inst]; ok {
		return max(rateLimitPerHour-rl.used, 0)
	}
	return rateLimitPerHour
}
