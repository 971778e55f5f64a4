package githubtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

func (s *Server) getRepo(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, s.repoJSON(r))
}

// getContent answers a file (base64, wrapped like GitHub's), a symbolic link
// or a directory listing.
func (s *Server) getContent(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := req.URL.Query().Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	if len(r.commits) == 0 {
		s.writeError(w, http.StatusNotFound, "This repository is empty.")
		return
	}
	c, err := r.resolve(ref)
	if err != nil {
		s.writeError(w, http.StatusNotFound, "No commit found for the ref "+ref)
		return
	}
	p := strings.Trim(req.PathValue("path"), "/")
	if f, ok := c.files[p]; ok {
		s.writeJSON(w, http.StatusOK, s.contentJSON(r, ref, c.sha, p, f, true))
		return
	}
	var entries []obj
	seen := map[string]bool{}
	for _, name := range c.paths() {
		rest, ok := strings.CutPrefix(name, p+"/")
		if p == "" {
			rest, ok = name, true
		}
		if !ok {
			continue
		}
		child, _, isDir := strings.Cut(rest, "/")
		if seen[child] {
			continue
		}
		seen[child] = true
		if isDir {
			entries = append(entries, s.dirJSON(r, ref, path.Join(p, child)))
		} else {
			entries = append(entries, s.contentJSON(r, ref, c.sha, name, c.files[name], false))
		}
	}
	if entries == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.writeJSON(w, http.StatusOK, entries)
}

func (s *Server) contentLinks(r *Repo, ref, p, kind, sha string) obj {
	self := s.api("repos/%s/contents/%s?ref=%s", r.FullName(), p, ref)
	git := s.api("repos/%s/git/%s/%s", r.FullName(), map[bool]string{true: "trees", false: "blobs"}[kind == "dir"], sha)
	html := s.URL + r.FullName() + "/" + map[bool]string{true: "tree", false: "blob"}[kind == "dir"] + "/" + ref + "/" + p
	return obj{"url": self, "git_url": git, "html_url": html, "_links": obj{"self": self, "git": git, "html": html}}
}

// contentJSON is GitHub's content-file (or content-symlink). A listing
// entry carries no content.
func (s *Server) contentJSON(r *Repo, ref, commitSHA, p string, f File, withContent bool) obj {
	sha := blobSHA(f.Content)
	j := obj{"name": path.Base(p), "path": p, "sha": sha, "size": len(f.Content), "type": "file",
		"download_url": s.URL + "_fake/raw/" + r.FullName() + "/" + commitSHA + "/" + p}
	if f.mode() == modeSymlink {
		j["type"], j["target"] = "symlink", f.Content
	} else if withContent {
		j["encoding"], j["content"] = "base64", wrap(base64.StdEncoding.EncodeToString([]byte(f.Content)), 60)
	}
	for k, v := range s.contentLinks(r, ref, p, "file", sha) {
		j[k] = v
	}
	return j
}

func (s *Server) dirJSON(r *Repo, ref, p string) obj {
	sha := blobSHA("tree " + p)
	j := obj{"name": path.Base(p), "path": p, "sha": sha, "size": 0, "type": "dir", "download_url": nil}
	for k, v := range s.contentLinks(r, ref, p, "dir", sha) {
		j[k] = v
	}
	return j
}

// wrap breaks s into lines of n characters, as GitHub does with base64.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteByte('\n')
		s = s[n:]
	}
	b.WriteString(s)
	b.WriteByte('\n')
	return b.String()
}

// downloadRaw serves a file's bytes, as raw.githubusercontent.com does.
func (s *Server) downloadRaw(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(req.PathValue("owner")+"/"+req.PathValue("repo"))]
	if r == nil || r.commits[req.PathValue("sha")] == nil {
		http.NotFound(w, req)
		return
	}
	f, ok := r.commits[req.PathValue("sha")].files[req.PathValue("path")]
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(f.Content))
}

// getCommit resolves a full or abbreviated SHA, branch or tag like GitHub.
func (s *Server) getCommit(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := req.PathValue("ref")
	c, err := r.resolve(ref)
	if err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+ref)
		return
	}
	s.writeJSON(w, http.StatusOK, s.commitJSON(r, c))
}

// getTarball redirects to the archive, as GitHub redirects to codeload.
func (s *Server) getTarball(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := req.PathValue("ref")
	sha := ref
	if c, err := r.resolve(ref); err == nil {
		sha = c.sha
	} else if _, custom := r.tarballs[ref]; !custom {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	w.Header().Set("Location", s.URL+"_fake/tarball/"+r.FullName()+"/"+sha)
	w.WriteHeader(http.StatusFound)
}

func (s *Server) downloadTarball(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	r := s.repos[strings.ToLower(req.PathValue("owner")+"/"+req.PathValue("repo"))]
	var raw []byte
	var err error
	if r != nil {
		sha := req.PathValue("sha")
		if custom, ok := r.tarballs[sha]; ok {
			raw = custom
		} else if c := r.commits[sha]; c != nil {
			raw, err = r.tarball(c)
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.t.Errorf("githubtest: build tarball: %v", err)
	}
	if raw == nil {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%s-%s-%s.tar.gz", r.owner, r.name, req.PathValue("sha")[:min(7, len(req.PathValue("sha")))]))
	w.Write(raw)
}

// tarball builds the archive like GitHub's (git archive): a pax global
// header holding the commit ID, then everything under one
// "owner-repo-<short sha>/" folder, directories before their files, modes kept.
func (r *Repo) tarball(c *commit) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	root := fmt.Sprintf("%s-%s-%s/", r.owner, r.name, c.sha[:7])
	headers := []*tar.Header{
		{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": c.sha}},
		{Typeflag: tar.TypeDir, Name: root, Mode: 0o775},
	}
	dirs := map[string]bool{}
	for _, p := range c.paths() {
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			if dir := strings.Join(parts[:i], "/") + "/"; !dirs[dir] {
				dirs[dir] = true
				headers = append(headers, &tar.Header{Typeflag: tar.TypeDir, Name: root + dir, Mode: 0o775})
			}
		}
		f := c.files[p]
		h := &tar.Header{Typeflag: tar.TypeReg, Name: root + p, Mode: f.mode(), Size: int64(len(f.Content))}
		if f.mode() == modeSymlink {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: root + p, Mode: 0o777, Linkname: f.Content}
		}
		headers = append(headers, h)
	}
	for _, h := range headers {
		if h.Typeflag != tar.TypeXGlobalHeader {
			h.ModTime, h.Uname, h.Gname = c.at, "root", "root"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(c.files[strings.TrimPrefix(h.Name, root)].Content)); err != nil {
				return nil, fmt.Errorf("write %s: %w", h.Name, err)
			}
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return nil, fmt.Errorf("close tarball: %w", err)
	}
	return buf.Bytes(), nil
}

// compare answers GET compare/{base}...{head} from the commit graph.
func (s *Server) compare(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	baseRef, headRef, ok := strings.Cut(req.PathValue("basehead"), "...")
	if !ok {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	base, err1 := r.resolve(baseRef)
	head, err2 := r.resolve(headRef)
	if err1 != nil || err2 != nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	mergeBase := ""
	for sha := head.sha; sha != ""; sha = r.commits[sha].parent {
		if r.isAncestor(sha, base.sha) {
			mergeBase = sha
			break
		}
	}
	if mergeBase == "" {
		s.writeError(w, http.StatusNotFound, "No common ancestor between "+baseRef+" and "+headRef+".")
		return
	}
	var ahead []obj
	for sha := head.sha; sha != mergeBase; sha = r.commits[sha].parent {
		ahead = append(ahead, s.commitJSON(r, r.commits[sha]))
	}
	slices.Reverse(ahead)
	behind := 0
	for sha := base.sha; sha != mergeBase; sha = r.commits[sha].parent {
		behind++
	}
	status := "diverged"
	switch {
	case len(ahead) == 0 && behind == 0:
		status = "identical"
	case behind == 0:
		status = "ahead"
	case len(ahead) == 0:
		status = "behind"
	}
	web := s.URL + r.FullName() + "/compare/" + req.PathValue("basehead")
	s.writeJSON(w, http.StatusOK, obj{
		"url": s.api("repos/%s/compare/%s", r.FullName(), req.PathValue("basehead")), "html_url": web,
		"permalink_url": s.URL + r.FullName() + "/compare/" + base.sha + "..." + head.sha,
		"diff_url":      web + ".diff", "patch_url": web + ".patch",
		"base_commit": s.commitJSON(r, base), "merge_base_commit": s.commitJSON(r, r.commits[mergeBase]),
		"status": status, "ahead_by": len(ahead), "behind_by": behind, "total_commits": len(ahead),
		"commits": append([]obj{}, ahead...), "files": []obj{},
	})
}

// getPull answers a pull request registered with AddPull; its head is the
// head branch's current commit.
func (s *Server) getPull(w http.ResponseWriter, req *http.Request) {
	r, n, branch, ok := s.pullOf(w, req)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	api := s.api("repos/%s/pulls/%d", r.FullName(), n)
	issue := s.api("repos/%s/issues/%d", r.FullName(), n)
	web := fmt.Sprintf("%s%s/pull/%d", s.URL, r.FullName(), n)
	link := func(href string) obj { return obj{"href": href} }
	side := func(b string) obj {
		return obj{"label": r.owner + ":" + b, "ref": b, "sha": r.branches[b], "user": s.userJSON(r.owner), "repo": s.repoJSON(r)}
	}
	head := side(branch)
	if fork, ok := r.gates.forks[n]; ok {
		head = s.forkSide(r, fork, branch)
	}
	commits := 0
	for sha := r.branches[branch]; sha != "" && !r.isAncestor(sha, r.branches[r.defaultBranch]); sha = r.commits[sha].parent {
		commits++
	}
	created := timestamp(r.created)
	s.writeJSON(w, http.StatusOK, obj{
		"id": int64(n) + r.id, "node_id": nodeID("PullRequest", int64(n)+r.id), "number": n,
		"url": api, "html_url": web, "diff_url": web + ".diff", "patch_url": web + ".patch", "issue_url": issue,
		"commits_url": api + "/commits", "review_comments_url": api + "/comments",
		"review_comment_url": s.api("repos/%s/pulls/comments{/number}", r.FullName()),
		"comments_url":       issue + "/comments", "statuses_url": s.api("repos/%s/statuses/%s", r.FullName(), r.branches[branch]),
		"state": "open", "locked": false, "title": fmt.Sprintf("Pull request #%d", n), "body": nil,
		"user": s.userJSON(r.owner), "author_association": "OWNER", "labels": []obj{}, "milestone": nil,
		"assignee": nil, "assignees": []obj{}, "requested_reviewers": []obj{}, "requested_teams": []obj{},
		"created_at": created, "updated_at": created, "closed_at": nil, "merged_at": nil,
		"merge_commit_sha": nil, "draft": false, "head": head, "base": side(r.defaultBranch),
		"_links": obj{"self": link(api), "html": link(web), "issue": link(issue), "comments": link(issue + "/comments"),
			"review_comments": link(api + "/comments"), "review_comment": link(s.api("repos/%s/pulls/comments{/number}", r.FullName())),
			"commits": link(api + "/commits"), "statuses": link(s.api("repos/%s/statuses/%s", r.FullName(), r.branches[branch]))},
		"auto_merge": nil, "active_lock_reason": nil, "merged": false, "mergeable": nil, "rebaseable": nil,
		"mergeable_state": "unknown", "merged_by": nil, "comments": 0, "review_comments": 0,
		"maintainer_can_modify": false, "commits": commits, "additions": 0, "deletions": 0, "changed_files": 0,
	})
}
