package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
	"github.com/railyard/railyard/store"
)

// deadListed is how many dead jobs of each queue `bot jobs` lists.
const deadListed = 100

// jobs lists the jobs Railyard gave up on, or queues one of them again.
func jobs(args []string, stdout, stderr io.Writer) int {
	sub := "list"
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	if (sub == "list" && len(args) != 0) || (sub == "replay" && len(args) != 1) || (sub != "list" && sub != "replay") {
		fmt.Fprint(stderr, "Usage:\n  bot jobs [list]      list dead-lettered jobs\n  bot jobs replay ID   queue dead-lettered job ID again\n")
		return 2
	}
	env, err := config.LoadEnv(os.LookupEnv, dotenvPath)
	if err != nil {
		fmt.Fprintf(stderr, "railyard: configuration problems:\n%v\n", err)
		return 1
	}
	if env.RedisURL == "" {
		fmt.Fprintln(stderr, "bot jobs: RAILYARD_REDIS_URL is not set; the embedded store lives inside the serving process, so its jobs cannot be reached from here")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, env.RedisURL, env.RedisCluster)
	if err != nil {
		fmt.Fprintf(stderr, "bot jobs: %v\n", err)
		return 1
	}
	defer st.Close()
	queues := server.NewQueues(st.Redis, queue.Options{}).All()

	if sub == "replay" {
		for _, nq := range queues {
			j, err := nq.Queue.Replay(ctx, args[0])
			if errors.Is(err, queue.ErrNoSuchJob) {
				continue
			}
			if err != nil {
				fmt.Fprintf(stderr, "bot jobs replay: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "queued %s job %s for %s again as %s\n", j.Kind, args[0], j.Repo, j.ID)
			return 0
		}
		fmt.Fprintf(stderr, "bot jobs replay: no dead-lettered job %s\n", args[0])
		return 1
	}

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "QUEUE\tID\tKIND\tREPOSITORY\tDELIVERIES\tRETRIES\tFAILING SINCE")
	n := 0
	for _, nq := range queues {
		dead, err := nq.Queue.Dead(ctx, deadListed)
		if err != nil {
			fmt.Fprintf(stderr, "bot jobs: %v\n", err)
			return 1
		}
		for _, j := range dead {
			since := "-"
			if !j.FailingSince.IsZero() {
				since = j.FailingSince.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", nq.Name, j.ID, j.Kind, j.Repo, j.Deliveries, j.Retries, since)
			n++
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d dead-lettered job(s); `bot jobs replay ID` queues one again\n", n)
	return 0
}
