package report

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of queued operations.
const (
	kindCheckRun   = "check_run"
	kindDeployment = "deployment"
	kindStatus     = "deployment_status"
	kindComment    = "comment"
	kindReaction   = "reaction"
)

// class is a kind of write with its own outbox per repository and its own
// budget, so that one never waits behind the other.
type class string

const (
	// conversation is what people read as it happens: comments and
	// reactions. GitHub counts them as content creation (80 a minute, 500
	// an hour), so they are paced to that, ahead of time.
	conversation class = "conversation"
	// status is check runs, deployments and their statuses: the steady
	// traffic of any CI/CD integration. It is sent one request at a time
	// per installation, slowed only by a points budget and by GitHub.
	status class = "status"
)

func classOf(kind string) class {
	switch kind {
	case kindComment, kindReaction:
		return conversation
	}
	return status
}

// op is one queued operation, stored as JSON in the outbox.
type op struct {
	// ID must stay the first field: the pop script recognises an operation
	// by the prefix {"id":"…" of its JSON rather than by the whole (large)
	// value.
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	Repo       Repo              `json:"repo"`
	Key        string            `json:"key,omitempty"`
	CheckRun   *CheckRun         `json:"check_run,omitempty"`
	Deployment *Deployment       `json:"deployment,omitempty"`
	Status     *DeploymentStatus `json:"status,omitempty"`
	Issue      int               `json:"issue,omitempty"`
	Body       string            `json:"body,omitempty"`
	CommentID  int64             `json:"comment_id,omitempty"`
	Content    string            `json:"content,omitempty"`
	// At is when it was queued (Unix ms), for the age of the oldest write;
	// 0 in what earlier versions queued.
	At int64 `json:"at,omitempty"`
}

// prefix is how the stored JSON of o begins.
func (o *op) prefix() string { return `{"id":"` + o.ID + `"` }

func decodeOp(data string) (*op, error) {
	d := json.NewDecoder(strings.NewReader(data))
	d.UseNumber() // payload numbers go back to GitHub exactly as given
	var o op
	if err := d.Decode(&o); err != nil {
		return nil, err
	}
	return &o, nil
}

// object names what o writes to on GitHub, for keeping order within one
// object: its check run, or its deployment (the create and its statuses);
// "" for anything else, which a status outbox sends in its turn only.
func (o *op) object() string {
	switch o.Kind {
	case kindCheckRun:
		return checkRunField(o.Key)
	case kindDeployment, kindStatus:
		return deploymentField(o.Key)
	}
	return ""
}

// young reports whether o was queued less than hold before now. What
// earlier versions queued carries no time and is old.
func (o *op) young(now time.Time, hold time.Duration) bool {
	return o.At != 0 && now.Sub(time.UnixMilli(o.At)) < hold
}

// provisional reports whether a deployment status only says that the job
// waits: it is worth showing only if the job really waits (see
// Options.ProvisionalHold), and a later status makes it obsolete.
func (s *DeploymentStatus) provisional() bool { return s.State == "queued" }

// final reports whether a deployment status ends the deployment; it is
// never dropped. A state Railyard does not know counts as final.
func (s *DeploymentStatus) final() bool {
	switch s.State {
	case "queued", "pending", "in_progress":
		return false
	}
	return true
}

// entry is what Railyard knows of an object it creates on GitHub, in the
// repository's ghid hash. Until the object is created, ID is 0 and Creator
// names the operation that creates it.
type entry struct {
	ID      int64  `json:"id,omitempty"`
	HTMLURL string `json:"html_url,omitempty"`
	Name    string `json:"name,omitempty"`
	Creator string `json:"creator,omitempty"`
}

// merge folds a later update into c: later fields win, fields the later
// update leaves unset keep their earlier value.
func (c *CheckRun) merge(later CheckRun) {
	c.Name = cmp.Or(later.Name, c.Name)
	c.HeadSHA = cmp.Or(later.HeadSHA, c.HeadSHA)
	c.Status = cmp.Or(later.Status, c.Status)
	c.Conclusion = cmp.Or(later.Conclusion, c.Conclusion)
	c.Title = cmp.Or(later.Title, c.Title)
	c.Summary = cmp.Or(later.Summary, c.Summary)
	c.Text = cmp.Or(later.Text, c.Text)
	c.DetailsURL = cmp.Or(later.DetailsURL, c.DetailsURL)
	c.ExternalID = cmp.Or(later.ExternalID, c.ExternalID)
	if later.Buttons != nil {
		c.Buttons = later.Buttons
	}
	c.StartedAt = cmp.Or(later.StartedAt, c.StartedAt)
	c.CompletedAt = cmp.Or(later.CompletedAt, c.CompletedAt)
}

// output is what a check run shows below its title.
type output struct {
	Title   string `json:"title,omitempty"`
	Summary string `json:"summary,omitempty"`
	Text    string `json:"text,omitempty"`
}

func (c *CheckRun) hasOutput() bool { return c.Title != "" || c.Summary != "" || c.Text != "" }

// shown is the output to keep after c is sent: none once the check run is
// completed, as it is not updated any more.
func (c *CheckRun) shown() *output {
	if c.final() || !c.hasOutput() {
		return nil
	}
	return &output{Title: c.Title, Summary: c.Summary, Text: c.Text}
}

// final reports whether c completes the check run; such an update is never
// merged into a later one.
func (c *CheckRun) final() bool { return c.Status == "completed" || c.Conclusion != "" }

// GitHub's limits.
const (
	maxOutput      = 65000 // output summary and text: 65,535 characters
	maxDescription = 140   // deployment status description
	maxButtons     = 3
	maxLabel       = 20
	maxButtonDesc  = 40
	maxIdentifier  = 20
	maxComment     = 65000 // comment body: 65,536 characters
)

// sanitize redacts secrets from every string that may reach GitHub and cuts
// fields to GitHub's limits. It copies what it changes that the caller may
// still hold (actions, payload).
func (r *Reporter) sanitize(o *op) error {
	switch o.Kind {
	case kindCheckRun:
		c := o.CheckRun
		for _, s := range []*string{&c.Name, &c.HeadSHA, &c.Status, &c.Conclusion, &c.Title, &c.DetailsURL, &c.ExternalID} {
			*s = r.clean(*s)
		}
		c.Summary = cutEnd(r.clean(c.Summary), maxOutput)
		c.Text = cutStart(r.clean(c.Text), maxOutput)
		if c.Buttons != nil {
			as := slices.Clone(c.Buttons[:min(len(c.Buttons), maxButtons)])
			for i, a := range as {
				as[i] = Button{
					Label:       cutRunes(r.clean(a.Label), maxLabel),
					Description: cutRunes(r.clean(a.Description), maxButtonDesc),
					Identifier:  cutRunes(r.clean(a.Identifier), maxIdentifier),
				}
			}
			c.Buttons = as
		}
	case kindDeployment:
		d := o.Deployment
		for _, s := range []*string{&d.Ref, &d.Environment, &d.Task, &d.Description} {
			*s = r.clean(*s)
		}
		if d.Payload != nil {
			p, err := r.cleanPayload(d.Payload)
			if err != nil {
				return err
			}
			d.Payload = p
		}
	case kindStatus:
		s := o.Status
		s.State = r.clean(s.State)
		s.Environment = r.clean(s.Environment)
		s.Description = cutRunes(r.clean(s.Description), maxDescription)
	case kindComment:
		o.Body = cutEnd(r.clean(o.Body), maxComment)
	case kindReaction:
		o.Content = r.clean(o.Content)
	}
	return nil
}

// newRedactor replaces each secret by "***", longest first so that a
// secret containing another is hidden whole.
func newRedactor(secrets []string) *strings.Replacer {
	ss := slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	slices.SortFunc(ss, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	ss = slices.Compact(ss)
	args := make([]string, 0, 2*len(ss))
	for _, s := range ss {
		args = append(args, s, "***")
	}
	return strings.NewReplacer(args...)
}

func (r *Reporter) clean(s string) string { return r.redact.Replace(s) }

// cleanPayload returns a redacted copy of p, as plain JSON values.
func (r *Reporter) cleanPayload(p map[string]any) (map[string]any, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var copied map[string]any
	if err := d.Decode(&copied); err != nil {
		return nil, err
	}
	return r.cleanValue(copied).(map[string]any), nil
}

func (r *Reporter) cleanValue(v any) any {
	switch v := v.(type) {
	case string:
		return r.clean(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[r.clean(k)] = r.cleanValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = r.cleanValue(x)
		}
		return out
	default:
		return v
	}
}

// cutEnd keeps the start of s within n bytes (so within n characters),
// marking the cut.
func cutEnd(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const marker = "\n\n… (cut to fit GitHub's limit)"
	i := n - len(marker)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + marker
}

// cutStart keeps the end of s within n bytes: for a log, the tail is what
// explains the failure.
func cutStart(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const marker = "… (earlier output cut to fit GitHub's limit)\n"
	i := len(s) - (n - len(marker))
	// Start on a whole line when one begins soon.
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 && j < 1024 && i+j+1 < len(s) {
		i += j + 1
	}
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return marker + s[i:]
}

// cutRunes keeps at most n characters of s, ending a cut one with "…".
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n - 1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}
