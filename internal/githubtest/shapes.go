package githubtest

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The App the fake plays: ClientCreator authenticates as it, and everything
// written with an installation token is authored by its bot user.
const (
	AppID    int64 = 1
	AppSlug        = "railyard"
	BotLogin       = AppSlug + "[bot]"
)

// obj is a JSON object under construction.
type obj = map[string]any

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nullable returns nil for an empty string, as GitHub sends null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "0%d:%s%d", len(kind), kind, id))
}

func (s *Server) api(format string, args ...any) string { return s.URL + fmt.Sprintf(format, args...) }

// userIDLocked gives each login a stable ID for the life of the server.
// Call with s.mu held.
func (s *Server) userIDLocked(login string) int64 {
	id, ok := s.users[login]
	if !ok {
		id = s.newID()
		s.users[login] = id
	}
	return id
}

// userJSON is GitHub's simple-user. Call with s.mu held.
func (s *Server) userJSON(login string) obj {
	id := s.userIDLocked(login)
	kind := "User"
	if strings.HasSuffix(login, "[bot]") {
		kind = "Bot"
	}
	u := s.api("users/%s", url.PathEscape(login))
	return obj{
		"login": login, "id": id, "node_id": nodeID(kind, id), "type": kind, "site_admin": false,
		"avatar_url": s.api("avatars/u/%d?v=4", id), "gravatar_id": "",
		"url": u, "html_url": s.api("%s", url.PathEscape(login)),
		"followers_url": u + "/followers", "following_url": u + "/following{/other_user}",
		"gists_url": u + "/gists{/gist_id}", "starred_url": u + "/starred{/owner}{/repo}",
		"subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs",
		"repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
		"received_events_url": u + "/received_events",
	}
}

// repoJSON is GitHub's full-repository (a superset of minimal-repository).
// Call with s.mu held.
func (s *Server) repoJSON(r *Repo) obj {
	full := r.owner + "/" + r.name
	api := s.api("repos/%s", full)
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://"), "/")
	created := timestamp(r.created)
	pushed := created
	if c := r.commits[r.branches[r.defaultBranch]]; c != nil {
		pushed = timestamp(c.at)
	}
	j := obj{
		"id": r.id, "node_id": nodeID("Repository", r.id), "name": r.name, "full_name": full,
		"owner": s.userJSON(r.owner), "private": false, "description": nil, "fork": false,
		"url": api, "html_url": s.URL + full, "homepage": nil, "language": nil,
		"clone_url": s.URL + full + ".git", "git_url": "git://" + host + "/" + full + ".git",
		"ssh_url": "git@" + host + ":" + full + ".git", "svn_url": s.URL + full, "mirror_url": nil,
		"default_branch": r.defaultBranch, "visibility": "public", "is_template": false, "topics": []string{},
		"forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
		"open_issues": 0, "open_issues_count": 0, "size": 0, "network_count": 0, "subscribers_count": 0,
		"has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false,
		"has_downloads": true, "has_discussions": false, "archived": false, "disabled": false,
		"allow_forking": true, "web_commit_signoff_required": false, "license": nil,
		"created_at": created, "updated_at": created, "pushed_at": pushed,
		"permissions": obj{"admin": false, "maintain": false, "push": false, "triage": false, "pull": true},
	}
	for key, suffix := range map[string]string{
		"archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
		"blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
		"collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
		"commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
		"contents_url": "/contents/{+path}", "contributors_url": "/contributors",
		"deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
		"forks_url": "/forks", "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
		"git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
		"issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
		"issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
		"languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
		"notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
		"releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
		"teams_url": "/teams", "trees_url": "/git/trees{/sha}",
	} {
		j[key] = api + suffix
	}
	return j
}

var appPermissions = obj{
	"checks": "write", "deployments": "write", "contents": "read", "issues": "write",
	"pull_requests": "write", "metadata": "read", "actions": "write", "statuses": "read",
}

var appEvents = []string{"push", "issue_comment", "check_run", "pull_request",
	"installation", "installation_repositories", "workflow_run"}

// appJSON is GitHub's integration. Call with s.mu held.
func (s *Server) appJSON(id int64, slug, name string) obj {
	return obj{
		"id": id, "slug": slug, "node_id": nodeID("Integration", id), "client_id": "Iv1." + slug,
		"owner": s.userJSON("railyard-org"), "name": name, "description": "Staged deployments.",
		"external_url": s.URL, "html_url": s.URL + "apps/" + slug,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"permissions": appPermissions, "events": appEvents, "installations_count": 1,
	}
}

// installationJSON is GitHub's installation. Call with s.mu held.
func (s *Server) installationJSON(id int64, account string) obj {
	return obj{
		"id": id, "app_id": AppID, "app_slug": AppSlug, "client_id": "Iv1." + AppSlug,
		"account": s.userJSON(account), "target_id": s.userIDLocked(account), "target_type": "User",
		"repository_selection": "selected", "single_file_name": nil, "has_multiple_single_files": false,
		"single_file_paths": []string{},
		"access_tokens_url": s.api("app/installations/%d/access_tokens", id),
		"repositories_url":  s.api("installation/repositories"),
		"html_url":          s.api("settings/installations/%d", id),
		"events":            appEvents, "permissions": appPermissions,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"suspended_by": nil, "suspended_at": nil,
	}
}

// gitUser is the author or committer of every fake commit.
func gitUser(at time.Time) obj {
	return obj{"name": "Codertocat", "email": "21031067+Codertocat@users.noreply.github.com", "date": timestamp(at)}
}

// commitJSON is GitHub's commit. Call with s.mu held.
func (s *Server) commitJSON(r *Repo, c *commit) obj {
	api := s.api("repos/%s/%s", r.owner, r.name)
	parents := []obj{}
	if c.parent != "" {
		parents = append(parents, obj{"sha": c.parent, "url": api + "/commits/" + c.parent,
			"html_url": s.URL + r.owner + "/" + r.name + "/commit/" + c.parent})
	}
	files := []obj{}
	for _, name := range c.paths() {
		files = append(files, obj{
			"sha": blobSHA(c.files[name].Content), "filename": name, "status": "added",
			"additions": strings.Count(c.files[name].Content, "\n"), "deletions": 0,
			"changes":      strings.Count(c.files[name].Content, "\n"),
			"blob_url":     s.URL + r.owner + "/" + r.name + "/blob/" + c.sha + "/" + name,
			"raw_url":      s.URL + r.owner + "/" + r.name + "/raw/" + c.sha + "/" + name,
			"contents_url": api + "/contents/" + name + "?ref=" + c.sha,
		})
	}
	return obj{
		"sha": c.sha, "node_id": nodeID("Commit", c.id), "url": api + "/commits/" + c.sha,
		"html_url": s.URL + r.owner + "/" + r.name + "/commit/" + c.sha, "comments_url": api + "/commits/" + c.sha + "/comments",
		"commit": obj{
			"url": api + "/git/commits/" + c.sha, "message": c.message, "comment_count": 0,
			"author": gitUser(c.at), "committer": gitUser(c.at),
			"tree":         obj{"sha": c.tree(), "url": api + "/git/trees/" + c.tree()},
			"verification": obj{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil},
		},
		"author": s.userJSON("Codertocat"), "committer": s.userJSON("Codertocat"),
		"parents": parents, "files": files,
		"stats": obj{"total": len(files), "additions": len(files), "deletions": 0},
	}
}

// simpleCommitJSON is GitHub's simple-commit, as in a workflow run.
func simpleCommitJSON(c *commit) obj {
	author := gitUser(c.at)
	delete(author, "date")
	return obj{"id": c.sha, "tree_id": c.tree(), "message": c.message, "timestamp": timestamp(c.at),
		"author": author, "committer": author}
}
