package githubtest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// secondaryLimit is GitHub's secondary rate limit as the fake enforces it,
// when a test asks: points per installation in a window.
type secondaryLimit struct {
	points  int
	window  time.Duration
	windows map[int64]*secondaryWindow
	refused int
}

type secondaryWindow struct {
	used int
	ends time.Time
}

// LimitSecondary makes the fake enforce a secondary rate limit on requests
// made with installation tokens, as GitHub counts it: a GET, HEAD or
// OPTIONS costs 1 point, any other method 5, and each installation may
// spend points in each window, which starts at its first request. A
// request past that is answered 403 with Retry-After (the seconds left in
// the window) and GitHub's message, does nothing and costs nothing.
// GitHub's own limit is 900 points a minute.
func (s *Server) LimitSecondary(points int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary = &secondaryLimit{points: points, window: window, windows: map[int64]*secondaryWindow{}}
}

// SecondaryLimited counts the requests refused by LimitSecondary.
func (s *Server) SecondaryLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secondary == nil {
		return 0
	}
	return s.secondary.refused
}

// overSecondary spends a request of inst's points, or returns how many
// seconds it must wait when they are spent. s.mu is held.
func (s *Server) overSecondary(inst int64, method string) (retryAfter int, over bool) {
	l := s.secondary
	if l == nil {
		return 0, false
	}
	cost := 5
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		cost = 1
	}
	now := time.Now()
	w, ok := l.windows[inst]
	if !ok || !now.Before(w.ends) {
		w = &secondaryWindow{ends: now.Add(l.window)}
		l.windows[inst] = w
	}
	if w.used+cost > l.points {
		l.refused++
		return max(1, int(math.Ceil(w.ends.Sub(now).Seconds()))), true
	}
	w.used += cost
	return 0, false
}

// refuseSecondary answers as GitHub does past a secondary rate limit.
func (s *Server) refuseSecondary(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	s.writeJSON(w, http.StatusForbidden, faultBody(&fault{status: http.StatusForbidden, header: w.Header()}))
}
