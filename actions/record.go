package actions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/store"
)

// keep is how long what a webhook said of a run, and which step owns a
// run, are remembered: longer than any step may wait.
const keep = 7 * 24 * time.Hour

func runKey(repo string, id int64) string {
	return store.RepoKey(repo, "actions", "run", strconv.FormatInt(id, 10))
}
func indexKey(repo string) string { return store.RepoKey(repo, "actions", "runs") }
func claimKey(repo string, id int64) string {
	return store.RepoKey(repo, "actions", "claim", strconv.FormatInt(id, 10))
}
func stepKey(st Step) string { return store.RepoKey(st.Repo.FullName(), "actions", "step", st.Key) }

// Record keeps what a workflow_run webhook says of a dispatched run of the
// workflow file at path, for the step that waits for it, and reports
// whether it did. Runs started any other way are none of Railyard's
// business and are not recorded.
func Record(ctx context.Context, rdb redis.UniversalClient, repo, path string, run *github.WorkflowRun) (bool, error) {
	if run.GetEvent() != "workflow_dispatch" || run.GetID() == 0 {
		return false, nil
	}
	created := run.GetCreatedAt().Time
	key := runKey(repo, run.GetID())
	_, err := rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.HSet(ctx, key, map[string]any{
			"status": run.GetStatus(), "conclusion": run.GetConclusion(), "url": run.GetHTMLURL(),
			"path": path, "branch": run.GetHeadBranch(), "created": created.Unix(),
		})
		tx.Expire(ctx, key, keep)
		tx.ZAdd(ctx, indexKey(repo), redis.Z{Score: float64(created.Unix()), Member: run.GetID()})
		tx.ZRemRangeByScore(ctx, indexKey(repo), "-inf", strconv.FormatInt(time.Now().Add(-keep).Unix(), 10))
		tx.Expire(ctx, indexKey(repo), keep)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record workflow run %d: %w", run.GetID(), err)
	}
	return true, nil
}

var errNotRecorded = errors.New("no webhook recorded this run")

// recorded returns what webhooks said of run id.
func (r *Runner) recorded(ctx context.Context, repo string, id int64) (runInfo, error) {
	m, err := r.rdb.HGetAll(ctx, runKey(repo, id)).Result()
	if err != nil {
		return runInfo{}, err
	}
	if len(m) == 0 {
		return runInfo{}, errNotRecorded
	}
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	return runInfo{
		id: id, url: m["url"], path: m["path"], branch: m["branch"],
		status: m["status"], conclusion: m["conclusion"], created: time.Unix(created, 0),
	}, nil
}

// recordedSince returns the dispatched runs webhooks told of that were
// created at or after since, oldest first.
func (r *Runner) recordedSince(ctx context.Context, repo string, since time.Time) ([]runInfo, error) {
	ids, err := r.rdb.ZRangeByScore(ctx, indexKey(repo), &redis.ZRangeBy{
		Min: strconv.FormatInt(since.Unix(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, err
	}
	var out []runInfo
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		if run, err := r.recorded(ctx, repo, id); err == nil {
			out = append(out, run)
		}
	}
	return out, nil
}

var errClaimed = errors.New("the run belongs to another step")

// claim makes run id this step's, so that no other step waiting for a run
// of the same workflow takes it, and so that a process taking the job
// over can stop it. It commits only while the step's run holds its stage
// lock.
func (r *Runner) claim(ctx context.Context, st Step, id int64) error {
	claim := claimKey(st.Repo.FullName(), id)
	err := r.fenced(ctx, st, []string{claim}, func(tx redis.Pipeliner) {
		tx.SetNX(ctx, claim, st.Key, keep)
		tx.Set(ctx, stepKey(st), id, keep)
	}, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, claim).Result()
		if err == nil && n > 0 {
			err = errClaimed
		}
		return err
	})
	if err != nil && !errors.Is(err, errClaimed) {
		return fmt.Errorf("claim run %d: %w", id, err)
	}
	return err
}

// held checks that the step's run still holds its stage lock.
func (r *Runner) held(ctx context.Context, st Step) error {
	if st.Lock == nil {
		return nil
	}
	return st.Lock.Check(ctx, r.rdb)
}

// fenced commits write in one transaction that first checks, with watched
// keys unchanged, that the step's run holds its stage lock and that each
// check passes.
func (r *Runner) fenced(ctx context.Context, st Step, watched []string, write func(redis.Pipeliner), checks ...func(*redis.Tx) error) error {
	if st.Lock != nil {
		watched = append(watched, st.Lock.Fence())
	}
	for range 10 {
		err := r.rdb.Watch(ctx, func(tx *redis.Tx) error {
			if st.Lock != nil {
				if err := st.Lock.Check(ctx, tx); err != nil {
					return err
				}
			}
			for _, c := range checks {
				if err := c(tx); err != nil {
					return err
				}
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				write(p)
				return nil
			})
			return err
		}, watched...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errors.New("too much contention")
}
