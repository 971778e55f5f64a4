package githubtest

import (
	"sync"
	"time"
)

// inFlight counts the requests being answered, by installation, so tests
// can see whether a client sent an installation's requests one at a time
// as GitHub asks.
type inFlight struct {
	mu      sync.Mutex
	latency time.Duration
	now     map[int64]int
	most    map[int64]int
	all     int // requests being answered, of any installation
	mostAll int
}

// SetLatency makes every request made with an installation token take at
// least d to answer, as GitHub's do, so that requests a client sends
// concurrently overlap on the fake too.
func (s *Server) SetLatency(d time.Duration) {
	s.flight.mu.Lock()
	defer s.flight.mu.Unlock()
	s.flight.latency = d
}

// MaxInFlight is the most requests of installation inst the fake was
// answering at one moment, and the most of any installations together.
func (s *Server) MaxInFlight(inst int64) (installation, all int) {
	s.flight.mu.Lock()
	defer s.flight.mu.Unlock()
	return s.flight.most[inst], s.flight.mostAll
}

// enter counts a request of inst as being answered until the returned
// function is called, after the latency SetLatency asked for.
func (s *Server) enter(inst int64) (leave func()) {
	f := &s.flight
	f.mu.Lock()
	if f.now == nil {
		f.now, f.most = map[int64]int{}, map[int64]int{}
	}
	f.now[inst]++
	f.all++
	f.most[inst] = max(f.most[inst], f.now[inst])
	f.mostAll = max(f.mostAll, f.all)
	latency := f.latency
	f.mu.Unlock()
	return func() {
		time.Sleep(latency)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.now[inst]--
		f.all--
	}
}
