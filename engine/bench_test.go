package engine

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/railyard/railyard/runner"
)

// BenchmarkRunJob is the CPU one stage job costs the process that runs
// it: a deploy of a new revision to a one-stage pipeline whose one step
// does nothing, queued by Deploy and run start to end by RunJob (stage
// lock, running-state transaction, pipeline file, unpacking the revision,
// forking the step, the final transaction and its reports), with the
// production engine defaults. The store is miniredis in the same process, so its share
// counts too. cpu-ms/job is the process's user+system time, its
// children's (the step's shell) included, per job.
func BenchmarkRunJob(b *testing.B) {
	w := newWorldWith(b, "stages:\n  - name: build\n    steps:\n      - name: noop\n        run: \":\"\n")
	w.e = New(w.rdb, w.q, w.rep, w.src, runner.NewWorkspace(b.TempDir()), Options{})
	p := settled()
	p.Stages = p.Stages[:1]
	w.seed(p)
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		sha := fmt.Sprintf("%040x", i+1)
		if _, err := w.e.Deploy(w.ctx, w.req(), sha, int64(i+3)); err != nil {
			b.Fatal(err)
		}
		for _, c := range w.claimAll() {
			if err := w.e.RunJob(w.ctx, c.lease.Job); err != nil {
				b.Fatal(err)
			}
			if err := c.lease.Ack(w.ctx); err != nil {
				b.Fatal(err)
			}
		}
		if s := w.pipeline().Stage("build"); s.State != Succeeded || s.Current != sha {
			b.Fatalf("build is %s at %s, want succeeded at %s", s.State, s.Current, sha)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/job")
}

// cpuTime is the user and system time of the process and of its children
// that ended.
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
