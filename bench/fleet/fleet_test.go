package main

import (
	"strings"
	"testing"
	"time"
)

// TestFleetSmoke runs the benchmark small, so that CI keeps it working:
// every stage of every repository becomes final on the fake GitHub, each
// stage job's writes are counted by route, and every command gets its 👀.
// It takes a few seconds; the deadlines are for -race on a busy machine.
func TestFleetSmoke(t *testing.T) {
	// The content budget is off: ten commands a second would exhaust
	// GitHub's 80 comments and reactions a minute within seconds.
	cfg := Config{
		Repos: 3, Stages: 2, Workers: 4, Deadline: time.Minute, CommandEvery: 200 * time.Millisecond, Grace: time.Minute,
		PointsPerMinute: Default, ContentPerMinute: 0, ContentPerHour: 0,
	}
	res, err := Run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.print(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	if res.AllFinal <= 0 {
		t.Errorf("not every stage became final within %v", cfg.Deadline)
	}
	for _, s := range res.Stages {
		if s.Final != cfg.Repos || s.P50 <= 0 || s.Last < s.P50 {
			t.Errorf("stage %s: final in %d of %d repositories, half after %v, the last after %v", s.Name, s.Final, cfg.Repos, s.P50, s.Last)
		}
	}
	if jobs := cfg.Repos * cfg.Stages; res.StageJobs != jobs || res.Failed != 0 {
		t.Errorf("%d stage jobs final, %d not successful; want %d, 0", res.StageJobs, res.Failed, jobs)
	}
	// Each stage job shows one check run and one deployment, never two.
	for _, op := range []string{"checks/create", "repos/create-deployment"} {
		if got, most := res.JobWrites[op], res.MostWrites[op]; got != res.StageJobs || most != 1 {
			t.Errorf("%s: %d writes for %d stage jobs, %d for one", op, got, res.StageJobs, most)
		}
	}
	if got := res.JobWrites["repos/create-deployment-status"]; got < res.StageJobs {
		t.Errorf("%d deployment statuses for %d stage jobs", got, res.StageJobs)
	}
	if res.Pipeline.Writes["reactions/create-for-issue-comment"] != 0 || res.Pipeline.Writes["issues/create-comment"] != 0 {
		t.Errorf("commands' writes counted as the pipeline's: %v", res.Pipeline.Writes)
	}
	if res.CommandsSent == 0 || res.Reacted != res.CommandsSent || res.EyesMax <= 0 {
		t.Errorf("%d of %d commands got their 👀 (max %v)", res.Reacted, res.CommandsSent, res.EyesMax)
	}
	if len(res.Refused) > 0 {
		t.Errorf("webhooks refused: %v", res.Refused)
	}
}
