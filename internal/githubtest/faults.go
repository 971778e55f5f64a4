package githubtest

import (
	"net/http"
	"net/http/httptest"
)

// Loss is how the answer to a request the fake performed goes missing.
type Loss int

const (
	// Answer502 performs the request, then answers 502 as a proxy in front
	// of GitHub does when GitHub's answer did not reach it.
	Answer502 Loss = iota
	// DropConnection performs the request, then closes the connection
	// without a byte of answer, as a reset does.
	DropConnection
)

// LoseAnswers makes the next n requests whose method is method (any when
// empty) and whose path starts with pathPrefix take effect, as if GitHub
// performed them, while their answers are lost as how says. They are
// recorded like any other request. This is the fault that doubles a create
// when the client simply retries it.
func (s *Server) LoseAnswers(method, pathPrefix string, n int, how Loss) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: pathPrefix, left: n, status: http.StatusBadGateway, loss: &how})
}

// serveLost performs r and throws its answer away.
func (s *Server) serveLost(w http.ResponseWriter, r *http.Request, how Loss) {
	s.mux.ServeHTTP(httptest.NewRecorder(), r)
	if how == DropConnection {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	s.writeJSON(w, http.StatusBadGateway, faultBody(&fault{status: http.StatusBadGateway}))
}
