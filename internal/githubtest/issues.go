package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// Comment is an issue or pull request comment written through the API.
type Comment struct {
	ID        int64
	Issue     int
	Body      string
	User      string // always BotLogin: only the App writes through the fake
	CreatedAt time.Time
}

type reaction struct {
	id      int64
	content string
}

// Comments returns the comments written on issue (or pull request) number
// issue, oldest first.
func (r *Repo) Comments(issue int) []Comment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Comment
	for _, c := range r.comments {
		if c.Issue == issue {
			out = append(out, *c)
		}
	}
	return out
}

// Reactions returns the contents ("eyes", "rocket", …) of the reactions the
// App added to comment commentID, in order. Any comment ID is accepted,
// including those of comments in webhook payloads that the fake never saw.
func (r *Repo) Reactions(commentID int64) []string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []string
	for _, x := range r.reactions[commentID] {
		out = append(out, x.content)
	}
	return out
}

// maxCommentRunes is the longest comment body GitHub takes, in a new
// comment or an edit.
const maxCommentRunes = 65536

// repoWithComment is repoWithBody for an issue comment's body, which it
// refuses past maxCommentRunes as GitHub does; doc is the operation's
// documentation.
func (s *Server) repoWithComment(w http.ResponseWriter, req *http.Request, doc string) (*Repo, string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return nil, "", false
	}
	if utf8.RuneCountInString(in.Body) > maxCommentRunes {
		s.validationFailed(w, doc, obj{"resource": "IssueComment", "code": "unprocessable", "field": "data",
			"message": fmt.Sprintf("Body is too long (maximum is %d characters)", maxCommentRunes)})
		return nil, "", false
	}
	return r, in.Body, true
}

func (s *Server) createComment(w http.ResponseWriter, req *http.Request) {
	r, body, ok := s.repoWithComment(w, req, "https://docs.github.com/rest/issues/comments#create-an-issue-comment")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Comment{ID: s.newID(), Issue: int(pathID(req, "issue_number")), Body: body, User: BotLogin, CreatedAt: time.Now().UTC()}
	r.comments = append(r.comments, c)
	w.Header().Set("Location", s.api("repos/%s/issues/comments/%d", r.FullName(), c.ID))
	s.writeJSON(w, http.StatusCreated, s.commentJSON(r, c))
}

func (s *Server) listComments(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []obj
	for _, c := range r.comments {
		if c.Issue == int(pathID(req, "issue_number")) {
			out = append(out, s.commentJSON(r, c))
		}
	}
	s.writeJSON(w, http.StatusOK, paginate(w, req, out))
}

func (s *Server) updateComment(w http.ResponseWriter, req *http.Request) {
	r, body, ok := s.repoWithComment(w, req, "https://docs.github.com/rest/issues/comments#update-an-issue-comment")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(r.comments, func(c *Comment) bool { return c.ID == pathID(req, "comment_id") })
	if i < 0 {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	r.comments[i].Body = body
	s.writeJSON(w, http.StatusOK, s.commentJSON(r, r.comments[i]))
}

// commentJSON is GitHub's issue-comment. Call with s.mu held.
func (s *Server) commentJSON(r *Repo, c *Comment) obj {
	return obj{
		"id": c.ID, "node_id": nodeID("IssueComment", c.ID), "body": c.Body,
		"url":       s.api("repos/%s/issues/comments/%d", r.FullName(), c.ID),
		"html_url":  fmt.Sprintf("%s%s/issues/%d#issuecomment-%d", s.URL, r.FullName(), c.Issue, c.ID),
		"issue_url": s.api("repos/%s/issues/%d", r.FullName(), c.Issue),
		"user":      s.userJSON(c.User), "author_association": "NONE",
		"created_at": timestamp(c.CreatedAt), "updated_at": timestamp(c.CreatedAt),
		"performed_via_github_app": s.appJSON(AppID, AppSlug, "Railyard"),
	}
}

// createReaction adds a reaction; adding one the App already made answers
// 200 with it, like GitHub.
func (s *Server) createReaction(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Content string `json:"content"`
	}
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	commentID := pathID(req, "comment_id")
	status := http.StatusOK
	i := slices.IndexFunc(r.reactions[commentID], func(x reaction) bool { return x.content == in.Content })
	if i < 0 {
		status = http.StatusCreated
		r.reactions[commentID] = append(r.reactions[commentID], reaction{id: s.newID(), content: in.Content})
		i = len(r.reactions[commentID]) - 1
	}
	x := r.reactions[commentID][i]
	s.writeJSON(w, status, obj{
		"id": x.id, "node_id": nodeID("Reaction", x.id), "user": s.userJSON(BotLogin),
		"content": x.content, "created_at": timestamp(time.Now()),
	})
}
