package githubtest

import (
	"net/http"
	"slices"
	"strconv"
)

// listCheckRunsForRef lists the check runs on a commit, newest first, with
// GitHub's check_name, status and app_id filters. filter=latest (the
// default) keeps the newest run of each name, as GitHub does.
func (s *Server) listCheckRunsForRef(w http.ResponseWriter, req *http.Request) {
	r, c, ok := s.refCommit(w, req, http.StatusUnprocessableEntity)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	q := req.URL.Query()
	latest := q.Get("filter") != "all"
	seen := map[string]bool{}
	var out []obj
	for _, run := range slices.Backward(r.checkRuns) {
		if run.HeadSHA != c.sha || !match(q, "check_name", run.Name) || !match(q, "status", run.Status) ||
			!match(q, "app_id", strconv.FormatInt(AppID, 10)) || (latest && seen[run.Name]) {
			continue
		}
		seen[run.Name] = true
		out = append(out, s.checkRunJSON(r, run))
	}
	s.writeJSON(w, http.StatusOK, obj{"total_count": len(out), "check_runs": paginate(w, req, out)})
}
