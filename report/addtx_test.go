package report

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/store"
)

// TestAddTxCommitsWithTheCallersTransaction: writes given to AddTx reach
// GitHub only when the caller's MULTI commits, in order; a MULTI discarded
// by a failed WATCH leaves nothing to send.
func TestAddTxCommitsWithTheCallersTransaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		watched := store.RepoKey(e.repo.FullName(), "state") // the repository's slot, as on a Redis Cluster
		writes := []Write{
			{Key: "job", CheckRun: &CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Status: "queued", Title: "Queued"}},
			{Key: "job", Deployment: &Deployment{Ref: e.sha, Environment: "prod", Task: "deploy"}},
			{Key: "job", DeploymentStatus: &DeploymentStatus{State: "queued", LogURLCheckRun: "job", Environment: "prod"}},
		}
		// Aborted: another client writes the watched key before EXEC.
		err := e.rdb.Watch(ctx, func(tx *redis.Tx) error {
			must(t, e.rdb.Set(ctx, watched, "other", 0).Err())
			_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				return r.AddTx(ctx, pipe, e.repo, writes...)
			})
			return err
		}, watched)
		if err != redis.TxFailedErr {
			t.Fatalf("the aborted transaction: %v, want %v", err, redis.TxFailedErr)
		}
		if n, err := r.Pending(ctx); err != nil || n != 0 {
			t.Fatalf("an aborted transaction left %d writes (%v)", n, err)
		}
		// Committed.
		must(t, e.rdb.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				return r.AddTx(ctx, pipe, e.repo, writes...)
			})
			return err
		}, watched))
		r.Committed(ctx, e.repo.FullName())
		run(t, r)
		await(t, "the check run and the deployment with its status", func() bool {
			ds := e.fake.Deployments()
			return len(e.fake.CheckRuns()) == 1 && len(ds) == 1 && len(ds[0].Statuses) == 1
		})
		awaitEmpty(t, r)
		if got := len(e.requests("POST", "")); got != 3 {
			t.Errorf("%d POSTs to GitHub, want 3", got)
		}
		must(t, e.rdb.Del(ctx, watched).Err())
	})
}
