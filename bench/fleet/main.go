// Command fleet is the end-to-end benchmark of issue #15: many
// repositories of one installation, each pushed once at the same moment,
// through a pipeline of trivial stages, on a real Railyard (server.New,
// its workers and reporter, signed webhooks over loopback HTTP) against
// the fake GitHub of internal/githubtest (every request checked against
// GitHub's OpenAPI description). Meanwhile it posts /status comments at a
// steady rate and times each one's 👀 reaction.
//
// It reports the time until every stage of every repository is final on
// GitHub (a completed check run and a final deployment status), GitHub
// requests per stage job by route, and command → 👀 latency. Past the
// deadline it reports how far the fleet got. Run it from the module root
// (it reads testdata/webhooks):
//
//	go run ./bench/fleet                                  # 200 repos, 3 stages, embedded store
//	go run ./bench/fleet -redis redis://127.0.0.1:6379/6 -points-per-minute 0
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/pprof"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.Repos, "repos", 200, "repositories, all of one installation, each pushed once at the same moment")
	flag.IntVar(&cfg.Stages, "stages", 3, "stages of each repository's pipeline (build → … → prod), one step `true` each")
	flag.StringVar(&cfg.RedisURL, "redis", "", "Redis URL of the store (a database of its own); empty is the embedded store")
	flag.IntVar(&cfg.Workers, "workers", 4, "stage workers (RAILYARD_WORKERS)")
	flag.IntVar(&cfg.PointsPerMinute, "points-per-minute", Default, "status writes' points budget per installation (5 a write); 0 is none, -1 Railyard's default")
	flag.IntVar(&cfg.ContentPerMinute, "content-per-minute", Default, "comments and reactions per installation a minute; 0 is none, -1 Railyard's default")
	flag.IntVar(&cfg.ContentPerHour, "content-per-hour", Default, "comments and reactions per installation an hour; 0 is none, -1 Railyard's default")
	flag.DurationVar(&cfg.Deadline, "deadline", 5*time.Minute, "report what was reached after this long")
	flag.DurationVar(&cfg.CommandEvery, "command-every", 500*time.Millisecond, "post a /status comment this often during the burst; 0 posts none")
	flag.DurationVar(&cfg.Grace, "grace", 10*time.Second, "after the run, wait at most this long for the 👀 of the last commands")
	flag.BoolVar(&cfg.Isolation, "isolation", false, "confine steps as production does (needs root)")
	flag.StringVar(&cfg.LogPath, "log", "", "keep the bot's log (Info, JSON) in this file")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run (Railyard, fake GitHub and driver) to this file")
	flag.Parse()
	// Milliseconds in the bot's log, to follow one command or job.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"

	if err := run(cfg, *asJSON, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(cfg Config, asJSON bool, cpuProfile string) (err error) {
	tb := newRunTB(context.Background())
	defer tb.close()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	if cpuProfile != "" {
		out, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := Run(tb, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.print(os.Stdout)
	}
	if err != nil {
		return err
	}
	if tb.Failed() {
		return fmt.Errorf("the fake GitHub refused requests GitHub would refuse (above)")
	}
	return nil
}

// print writes the result as a compact table.
func (r *Result) print(out io.Writer) error {
	c := r.Config
	store := "embedded"
	if c.RedisURL != "" {
		store = "redis"
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%d repos × %d stages, store %s, %d workers, points/min %s, content %s/min %s/h, deadline %v\n",
		c.Repos, c.Stages, store, c.Workers, budgetText(c.PointsPerMinute), budgetText(c.ContentPerMinute), budgetText(c.ContentPerHour), c.Deadline)
	fmt.Fprintf(w, "pushes accepted in\t%v\n", r.Pushed.Round(time.Millisecond))
	prod := r.Stages[len(r.Stages)-1]
	if r.AllFinal > 0 {
		fmt.Fprintf(w, "every stage final in\t%v\n", r.AllFinal.Round(10*time.Millisecond))
	} else {
		fmt.Fprintf(w, "every stage final in\tnot reached: %d of %d had reached %s after %v\n", prod.Final, c.Repos, prod.Name, r.Elapsed.Round(time.Second))
	}
	fmt.Fprintf(w, "CPU (whole process)\t%v over %v\n", r.CPU.Round(10*time.Millisecond), r.Elapsed.Round(10*time.Millisecond))
	fmt.Fprintf(w, "\nstage\tfinal\tp50\tlast\n")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "%s\t%d/%d\t%v\t%v\n", s.Name, s.Final, c.Repos, s.P50.Round(10*time.Millisecond), s.Last.Round(10*time.Millisecond))
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "NOT SUCCESSFUL\t%d stage jobs\n", r.Failed)
	}
	jobs := float64(max(r.StageJobs, 1))
	fmt.Fprintf(w, "\nwrites of the %d final stage jobs\tcount\tper job\tmost in one job\n", r.StageJobs)
	total := 0
	for _, op := range slices.Sorted(maps.Keys(r.JobWrites)) {
		n := r.JobWrites[op]
		total += n
		fmt.Fprintf(w, "  %s\t%d\t%.2f\t%d\n", op, n, float64(n)/jobs, r.MostWrites[op])
	}
	fmt.Fprintf(w, "writes per stage job\t%d\t%.2f\n", total, float64(total)/jobs)
	fmt.Fprintf(w, "\nevery request of the pipeline\tcount\n")
	for _, kind := range []struct {
		name string
		m    map[string]int
	}{{"write", r.Pipeline.Writes}, {"read", r.Pipeline.Reads}} {
		for _, op := range slices.Sorted(maps.Keys(kind.m)) {
			fmt.Fprintf(w, "  %s %s\t%d\n", kind.name, op, kind.m[op])
		}
	}
	fmt.Fprintf(w, "writes, reads\t%d, %d\t(reads per final stage job %.2f)\n", r.Pipeline.TotalWrites(), r.Pipeline.TotalReads(), float64(r.Pipeline.TotalReads())/jobs)
	fmt.Fprintf(w, "installation tokens\t%d\n", r.Tokens)
	fmt.Fprintf(w, "commands' writes, reads\t%d, %d\n", r.Commands.TotalWrites(), r.Commands.TotalReads())
	fmt.Fprintf(w, "\n/status → 👀\t%d of %d reacted\tp50 %v\tp99 %v\tmax %v\n", r.Reacted, r.CommandsSent,
		r.EyesP50.Round(time.Millisecond), r.EyesP99.Round(time.Millisecond), r.EyesMax.Round(time.Millisecond))
	for _, s := range r.Refused {
		fmt.Fprintf(w, "refused webhook\t%s\n", s)
	}
	return w.Flush()
}

func budgetText(n int) string {
	switch n {
	case 0:
		return "off"
	case Default:
		return "default"
	}
	return fmt.Sprint(n)
}
