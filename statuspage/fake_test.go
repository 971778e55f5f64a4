package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/htmltest"
	"github.com/railyard/railyard/report"
)

// Test fixtures: the states (docs/reference.md#states) a person would look
// at, stored as the engine stores them and read back through a fake Source.

const web = "https://github.example/"

// rev makes a full SHA whose short form is seven times c.
func rev(c string) string { return strings.Repeat(c, 7) + strings.Repeat("f", 33) }

var (
	r0, r1, r2, r3 = rev("0"), rev("1"), rev("2"), rev("3")
	t0             = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
)

type fakeSource struct {
	state   []byte              // engine.Pipeline JSON as the engine stores it; nil: never seen
	audit   []engine.AuditEntry // newest first, as the engine keeps it
	links   map[string]string   // check-run key → page
	err     error               // fails every state read
	linkErr error               // fails every link lookup
	delays  []report.Delay      // of installation 7
}

func (f *fakeSource) Pipeline(_ context.Context, repo string) (*engine.Pipeline, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.state == nil {
		// What the engine returns for a repository it has never seen.
		return &engine.Pipeline{Repo: repo}, nil
	}
	var p engine.Pipeline
	if err := json.Unmarshal(f.state, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (f *fakeSource) Audit(_ context.Context, _ string, n int) ([]engine.AuditEntry, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.audit[:min(n, len(f.audit))], nil
}

func (f *fakeSource) CheckRunURL(_ context.Context, _, key string) (string, error) {
	return f.links[key], f.linkErr
}

func (f *fakeSource) GitHubDelays(_ context.Context, installationID int64) ([]report.Delay, error) {
	if installationID != 7 {
		return nil, fmt.Errorf("installation %d has no repository here", installationID)
	}
	return f.delays, nil
}

func stored(p engine.Pipeline) []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

// idle is a pipeline that has seen its file but no push yet.
func idle() *fakeSource {
	return &fakeSource{state: stored(engine.Pipeline{
		Repo: "octo/app", InstallationID: 7, Branch: "main",
		Stages: []*engine.StageState{{Name: "build", State: engine.Idle}, {Name: "prod", State: engine.Idle}},
	})}
}

// running has r1 deploying to staging while r2, already built, waits for it.
func running() *fakeSource {
	return &fakeSource{
		state: stored(engine.Pipeline{
			Repo: "octo/app", InstallationID: 7, Branch: "main",
			Stages: []*engine.StageState{
				{Name: "build", State: engine.Succeeded, Current: r2, Good: []string{r2, r1, r0},
					Job: &engine.Job{ID: "b2", Stage: "build", SHA: r2, Operation: engine.OpDeploy, Actor: "carol"}},
				{Name: "staging", State: engine.InProgress, Current: r0, Good: []string{r0},
					Job: &engine.Job{ID: "s1", Stage: "staging", SHA: r1, Operation: engine.OpPromote, Actor: "carol"},
					Waiting: &engine.Job{ID: "s2", Stage: "staging", SHA: r2, Operation: engine.OpPromote, Actor: "carol",
						Hold: "waiting for staging to finish 1111111"}},
				{Name: "prod", State: engine.Idle, Current: r0, Good: []string{r0}},
			},
		}),
		audit: []engine.AuditEntry{
			{At: t0.Add(2 * time.Minute), Actor: "carol", Operation: engine.OpPush, Stage: "build", From: r1, To: r2, Job: "b2"},
			{At: t0.Add(time.Minute), Actor: "carol", Operation: engine.OpPush, Stage: "build", From: r0, To: r1, Job: "b1"},
		},
		links: map[string]string{
			engine.CheckRunKey("b2"): web + "octo/app/runs/11",
			engine.CheckRunKey("s1"): web + "octo/app/runs/12",
		},
	}
}

// scriptReason is a reason a person might type to attack the page.
const scriptReason = `<script>alert("x")</script> db on fire`

// halted is stopped and in patch mode, with staging rolled back and blocked.
func halted() *fakeSource {
	return &fakeSource{
		state: stored(engine.Pipeline{
			Repo: "octo/app", InstallationID: 7, Branch: "main",
			Stopped: &engine.Mode{Actor: "alice", Reason: scriptReason, At: t0},
			Patched: &engine.Mode{Actor: "bob", Reason: "hotfix for login", At: t0.Add(5 * time.Minute), Stage: "prod", SHA: r3},
			Stages: []*engine.StageState{
				{Name: "build", State: engine.Succeeded, Current: r2, Good: []string{r2, r1},
					Job: &engine.Job{ID: "b2", Stage: "build", SHA: r2, Operation: engine.OpDeploy, Actor: "carol"}},
				{Name: "staging", State: engine.RolledBack, Blocked: true, BlockedBy: "rollback by @carol", Current: r1, Good: []string{r1, r2},
					Job: &engine.Job{ID: "s1", Stage: "staging", SHA: r1, Operation: engine.OpRollback, Actor: "carol"},
					Waiting: &engine.Job{ID: "s2", Stage: "staging", SHA: r2, Operation: engine.OpPromote, Actor: "carol",
						Hold: "held: patch mode (prod at 3333333 by @bob)"}},
				{Name: "prod", State: engine.InProgress, Current: r1, Good: []string{r1},
					Job: &engine.Job{ID: "p3", Stage: "prod", SHA: r3, Operation: engine.OpPatch, Actor: "bob"}},
			},
		}),
		audit: []engine.AuditEntry{
			{At: t0.Add(5 * time.Minute), Actor: "bob", Operation: engine.OpPatch, Stage: "prod", From: r1, To: r3, Reason: "hotfix for login"},
			{At: t0, Actor: "alice", Operation: engine.OpStop, Reason: scriptReason},
			{At: t0.Add(-10 * time.Minute), Actor: "carol", Operation: engine.OpRollback, Stage: "staging", From: r2, To: r1, Reason: "bad migration"},
		},
		links: map[string]string{engine.CheckRunKey("p3"): web + "octo/app/runs/30"},
	}
}

// throttled is an idle pipeline whose installation's check runs GitHub
// asked to hold, since 10:02 until 10:05.
func throttled() *fakeSource {
	f := idle()
	f.delays = []report.Delay{{Class: "status", Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute), Why: "retry_after"}}
	return f
}

// busy is an idle pipeline with a long history: 60 pushes, one a minute.
func busy() *fakeSource {
	f := idle()
	for i := 59; i >= 0; i-- {
		f.audit = append(f.audit, engine.AuditEntry{
			At: t0.Add(time.Duration(i) * time.Minute), Actor: "dave", Operation: engine.OpPush,
			Stage: "build", To: r1, Reason: fmt.Sprintf("push %d", i),
		})
	}
	return f
}

func serve(t *testing.T, h http.Handler, method, path string, prepare func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, nil)
	if prepare != nil {
		prepare(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// What a person reads on a page: tables, banners, links.

// rows returns the body cells of the table with the given id.
func rows(doc *html.Node, id string) [][]string {
	var out [][]string
	for table := range htmltest.Elements(doc, "table") {
		if htmltest.Attr(table, "id") != id {
			continue
		}
		for body := range htmltest.Elements(table, "tbody") {
			for tr := range htmltest.Elements(body, "tr") {
				var cells []string
				for td := range htmltest.Elements(tr, "td") {
					cells = append(cells, htmltest.Text(td))
				}
				out = append(out, cells)
			}
		}
	}
	return out
}

// banners returns the text of every banner on the page.
func banners(doc *html.Node) []string {
	var out []string
	for div := range htmltest.Elements(doc, "div") {
		if strings.Contains(" "+htmltest.Attr(div, "class")+" ", " banner ") {
			out = append(out, htmltest.Text(div))
		}
	}
	return out
}

// links maps each link text to the targets it points to.
func links(doc *html.Node) map[string][]string {
	out := map[string][]string{}
	for a := range htmltest.Elements(doc, "a") {
		out[htmltest.Text(a)] = append(out[htmltest.Text(a)], htmltest.Attr(a, "href"))
	}
	return out
}
