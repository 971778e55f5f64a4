package redisproc_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/internal/redisproc"
)

func TestRestartKeepsDataAndRestartEmptyLosesIt(t *testing.T) {
	s := redisproc.Start(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	s.Kill()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("the killed server still answers")
	}
	s.Restart()
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("after a crash and restart k = %q (%v), want v", got, err)
	}

	s.Stop()
	s.RestartEmpty()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("after a restart without the data %d keys (%v), want none", n, err)
	}
}
