package githubtest

import (
	"net/http"
	"slices"
	"strings"
)

type permission struct{ permission, role string }

// SetPermission sets what GET collaborators/{user}/permission answers for
// user. level is GitHub's folded level ("admin", "write", "read" or
// "none": maintain folds to write and triage to read); roleName tells them
// apart ("admin", "maintain", "write", "triage", "read", or a custom role).
// Users never set answer read/"read", like a public repository.
func (r *Repo) SetPermission(user, level, roleName string) {
	if !slices.Contains([]string{"admin", "write", "read", "none"}, level) {
		r.s.t.Errorf("githubtest: SetPermission(%q, %q, %q): permission must be admin, write, read or none", user, level, roleName)
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.perms[strings.ToLower(user)] = permission{level, roleName}
}

// flags are the permission booleans of a role, as in a collaborator's
// "permissions" object.
func flags(p permission) map[string]bool {
	order := []string{"pull", "triage", "push", "maintain", "admin"}
	level := map[string]int{"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
	n, ok := level[p.role]
	if !ok { // a custom role: its base permission
		n = level[p.permission]
	}
	out := map[string]bool{}
	for i, name := range order {
		out[name] = i < n
	}
	return out
}

func (s *Server) getPermission(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user := req.PathValue("username")
	p, ok := r.perms[strings.ToLower(user)]
	if !ok {
		p = permission{"read", "read"}
	}
	u := s.userJSON(user)
	u["permissions"], u["role_name"] = flags(p), p.role
	s.writeJSON(w, http.StatusOK, obj{"permission": p.permission, "role_name": p.role, "user": u})
}
