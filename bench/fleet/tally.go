package main

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/railyard/railyard/internal/githubtest"
)

// Result is what one run measured.
type Result struct {
	Config  Config        `json:"config"`
	Pushed  time.Duration `json:"pushed_ns"`  // start → the last push's 202
	Elapsed time.Duration `json:"elapsed_ns"` // start → every stage final, or the deadline
	CPU     time.Duration `json:"cpu_ns"`     // this process's CPU time meanwhile
	// AllFinal is the time from the start until every stage of every
	// repository was final on GitHub; zero if that was not reached.
	AllFinal time.Duration `json:"all_final_ns"`
	// Final counts, per stage in pipeline order, the repositories where it
	// was final by the end; Failed those whose conclusion was not success.
	Stages []StageResult `json:"stages"`
	Failed int           `json:"failed"`
	// StageJobs is how many stage jobs were final: the denominator of the
	// per-job figures.
	StageJobs int `json:"stage_jobs"`
	// JobWrites are the writes of the final stage jobs by operationId,
	// MostWrites the most one of them made of each.
	JobWrites  map[string]int `json:"job_writes"`
	MostWrites map[string]int `json:"most_writes_of_one_job"`
	// Requests to GitHub by operationId, split by who made them: the
	// pipeline's jobs (final or not) or the commands; token requests apart.
	Pipeline Routes `json:"pipeline"`
	Commands Routes `json:"commands"`
	Tokens   int    `json:"token_requests"`
	// Command → 👀: from sending the comment's webhook (answered 202) to
	// the fake GitHub receiving the eyes reaction.
	CommandsSent int           `json:"commands_sent"`
	Reacted      int           `json:"commands_reacted"`
	EyesP50      time.Duration `json:"eyes_p50_ns"`
	EyesP99      time.Duration `json:"eyes_p99_ns"`
	EyesMax      time.Duration `json:"eyes_max_ns"`
	// Eyes is each command's latency by when it was sent, from the
	// start, so that a slow one can be placed in the burst.
	Eyes    []Eye    `json:"eyes"`
	Refused []string `json:"refused,omitempty"` // webhooks not answered 202
}

// Eye is one command's 👀.
type Eye struct {
	Accepted time.Duration `json:"accepted_ns"` // sent, from the start
	Latency  time.Duration `json:"latency_ns"`  // zero: no 👀 came
}

// StageResult is one stage across the fleet.
type StageResult struct {
	Name  string `json:"name"`
	Final int    `json:"final"` // repositories where it was final
	// P50 and Last are when half and all of those became final, from the
	// start, as the fake GitHub received their last write.
	P50  time.Duration `json:"p50_ns"`
	Last time.Duration `json:"last_ns"`
}

// Routes counts requests by operationId.
type Routes struct {
	Writes map[string]int `json:"writes"`
	Reads  map[string]int `json:"reads"`
}

func (r Routes) total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TotalWrites and TotalReads sum the routes.
func (r Routes) TotalWrites() int { return r.total(r.Writes) }
func (r Routes) TotalReads() int  { return r.total(r.Reads) }

func (r *Routes) add(req githubtest.Request) {
	m := &r.Reads
	if req.Method != http.MethodGet {
		m = &r.Writes
	}
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[req.OperationID]++
}

// tally reads the figures from what the fake GitHub received.
func (f *fleet) tally(start time.Time, reqs []githubtest.Request) *Result {
	res := &Result{}
	for _, q := range reqs {
		switch {
		case q.OperationID == "apps/create-installation-access-token":
			res.Tokens++
		case f.byCommand(q):
			res.Commands.add(q)
		default:
			res.Pipeline.add(q)
		}
	}

	writes, finalAt := f.byJob(reqs)
	lasts := make([][]time.Duration, len(f.stages))
	var allFinal time.Duration
	complete := true
	for i, r := range f.repos {
		final := finalStages(r, f.shas[i], f.stages)
		for s, name := range f.stages {
			c, ok := final[name]
			if !ok {
				complete = false
				continue
			}
			if c != "success" {
				res.Failed++
			}
			res.StageJobs++
			when, ok := finalAt[stageKey{r.FullName(), name}]
			if !ok {
				complete = false // final on GitHub, but not through the requests this run saw
				continue
			}
			for op, n := range writes[stageKey{r.FullName(), name}] {
				if res.JobWrites == nil {
					res.JobWrites, res.MostWrites = map[string]int{}, map[string]int{}
				}
				res.JobWrites[op] += n
				res.MostWrites[op] = max(res.MostWrites[op], n)
			}
			at := when.Sub(start)
			lasts[s] = append(lasts[s], at)
			allFinal = max(allFinal, at)
		}
	}
	if complete {
		res.AllFinal = allFinal
	}
	for s, name := range f.stages {
		res.Stages = append(res.Stages, StageResult{Name: name, Final: len(lasts[s]),
			P50: quantile(lasts[s], 0.5), Last: quantile(lasts[s], 1)})
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	res.CommandsSent = len(f.commands)
	seen := eyes(reqs)
	var lat []time.Duration
	for id, accepted := range f.commands {
		eye := Eye{Accepted: accepted.Sub(start)}
		if at, ok := seen[id]; ok {
			eye.Latency = at.Sub(accepted)
			lat = append(lat, eye.Latency)
		}
		res.Eyes = append(res.Eyes, eye)
	}
	slices.SortFunc(res.Eyes, func(a, b Eye) int { return cmp.Compare(a.Accepted, b.Accepted) })
	res.Reacted = len(lat)
	res.EyesP50, res.EyesP99, res.EyesMax = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)
	return res
}

// byCommand reports whether a request was made for a command rather
// than for a stage job: replies and reactions, the commenter's
// permission, and the head of the default branch the command reads.
func (f *fleet) byCommand(q githubtest.Request) bool {
	op := q.OperationID
	return strings.HasPrefix(op, "issues/") || strings.HasPrefix(op, "reactions/") ||
		op == "repos/get-collaborator-permission-level" ||
		(op == "repos/get-commit" && strings.HasSuffix(q.Path, "/commits/"+defaultBranch))
}

type stageKey struct{ repo, stage string }

// jobs knows the check runs and deployments of the fleet, to tell which
// stage job a status write is for.
type jobs struct {
	checks, deploys map[int64]stageKey // by ID
}

func (f *fleet) jobs() jobs {
	j := jobs{checks: map[int64]stageKey{}, deploys: map[int64]stageKey{}}
	for _, r := range f.repos {
		for _, cr := range r.CheckRuns() {
			j.checks[cr.ID] = stageKey{r.FullName(), strings.TrimPrefix(cr.Name, "railyard/")}
		}
		for _, d := range r.Deployments() {
			j.deploys[d.ID] = stageKey{r.FullName(), d.Environment}
		}
	}
	return j
}

// statusWrite is a write for one stage job, and whether it made the
// stage final on GitHub: a completed check run or a final deployment
// status.
type statusWrite struct {
	job                 stageKey
	checkDone, deplDone bool
}

// of reads which stage job a write is for; ok is false for other
// requests.
func (j jobs) of(q githubtest.Request) (w statusWrite, ok bool) {
	parts := strings.Split(strings.Trim(q.Path, "/"), "/") // repos/{owner}/{repo}/…
	if len(parts) < 4 || q.Method == http.MethodGet {
		return w, false
	}
	repo := parts[1] + "/" + parts[2]
	var body struct{ Name, Status, State, Environment string }
	json.Unmarshal(q.Body, &body) // the fake GitHub checked it
	switch q.OperationID {
	case "checks/create":
		w.job, ok = stageKey{repo, strings.TrimPrefix(body.Name, "railyard/")}, true
		w.checkDone = body.Status == "completed"
	case "checks/update":
		id, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
		w.job, ok = j.checks[id]
		w.checkDone = body.Status == "completed"
	case "repos/create-deployment":
		w.job, ok = stageKey{repo, body.Environment}, true
	case "repos/create-deployment-status":
		id, _ := strconv.ParseInt(parts[len(parts)-2], 10, 64)
		w.job, ok = j.deploys[id]
		w.deplDone = finalState[body.State]
	}
	return w, ok
}

// byJob sorts the status writes by stage job, and finds when each stage
// became final on GitHub: the later of its check run's completion and its
// deployment's final status, as the fake GitHub received them.
func (f *fleet) byJob(reqs []githubtest.Request) (writes map[stageKey]map[string]int, finalAt map[stageKey]time.Time) {
	j := f.jobs()
	writes = map[stageKey]map[string]int{}
	checkAt, deployAt := map[stageKey]time.Time{}, map[stageKey]time.Time{}
	first := func(m map[stageKey]time.Time, k stageKey, at time.Time) {
		if _, ok := m[k]; !ok {
			m[k] = at
		}
	}
	for _, q := range reqs {
		w, ok := j.of(q)
		if !ok {
			continue
		}
		if writes[w.job] == nil {
			writes[w.job] = map[string]int{}
		}
		writes[w.job][q.OperationID]++
		if w.checkDone {
			first(checkAt, w.job, q.At)
		}
		if w.deplDone {
			first(deployAt, w.job, q.At)
		}
	}
	finalAt = map[stageKey]time.Time{}
	for k, c := range checkAt {
		if d, ok := deployAt[k]; ok {
			finalAt[k] = maxTime(c, d)
		}
	}
	return writes, finalAt
}

// eyes returns when the fake GitHub first received an eyes reaction to
// each comment.
func eyes(reqs []githubtest.Request) map[int64]time.Time {
	out := map[int64]time.Time{}
	for _, q := range reqs {
		if q.OperationID != "reactions/create-for-issue-comment" {
			continue
		}
		var body struct{ Content string }
		if json.Unmarshal(q.Body, &body) != nil || body.Content != "eyes" {
			continue
		}
		parts := strings.Split(strings.Trim(q.Path, "/"), "/") // …/comments/{id}/reactions
		id, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
		if _, seen := out[id]; err == nil && !seen {
			out[id] = q.At
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// quantile is the q-quantile of d by nearest rank; zero for none.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}
