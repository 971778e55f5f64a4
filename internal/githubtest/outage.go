package githubtest

import (
	"math"
	"net/http"
	"slices"
)

// FailAll answers every request, token requests and downloads included,
// with status and GitHub's error JSON until restore is called, as when
// GitHub, or the proxy in front of it, is down. Requests are still
// recorded. Faults set before keep their counts for after the outage.
func (s *Server) FailAll(status int) (restore func()) {
	f := &fault{left: math.MaxInt, status: status, header: http.Header{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = slices.Insert(s.faults, 0, f)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.faults = slices.DeleteFunc(s.faults, func(o *fault) bool { return o == f })
	}
}
