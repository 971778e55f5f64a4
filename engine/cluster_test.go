package engine

import (
	"os"
	"testing"

	"github.com/railyard/railyard/internal/redistest"
	"github.com/railyard/railyard/store"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// On a real three-master Redis Cluster, where the repository's keys and
// the stage queue's live on different masters, a deploy's state change
// and the stage jobs it queues commit together, and the revision goes
// through build and staging with every job queued once.
func TestDeployGoesThroughOnRedisCluster(t *testing.T) {
	c := redistest.Cluster(t)
	rdb := c.Emptied(t)
	ctx := t.Context()
	const prefix = "test:{stages}:" // a slot on another master than octo/app's
	w := newWorldOn(t, testPipeline, rdb, nil, prefix)
	stream := prefix + "jobs"
	if a, b := c.MasterOf(t, rdb, pipelineKey(testRepo)), c.MasterOf(t, rdb, stream); a == b {
		t.Fatalf("the repository's keys and the stage queue share master %s; the test needs them apart", a)
	}

	if _, err := w.e.Deploy(ctx, w.req(), shaC, 1); err != nil {
		t.Fatalf("deploy on the cluster: %v", err)
	}
	if d := w.depth(); d.Ready != 1 {
		t.Fatalf("queue depth after the deploy = %+v, want the build job ready", d)
	}
	w.runQueued()
	p := w.pipeline()
	for _, stage := range []string{"build", "staging"} {
		if s := p.Stage(stage); s.State != Succeeded || s.Current != shaC {
			t.Errorf("%s is %s at %.7s, want succeeded at ccccccc", stage, s.State, s.Current)
		}
	}
	if got := w.ranSteps(); len(got) == 0 {
		t.Error("no step ran")
	}
	if n := rdb.LLen(ctx, store.RepoKey(testRepo, "queued", prefix)).Val(); n != 0 {
		t.Errorf("%d jobs left in the repository's job outbox", n)
	}
}
