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

func TestPasswordIsAsked(t *testing.T) {
	s := redisproc.StartWith(t, redisproc.Options{Password: "s3cret"})
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil {
		t.Error("a client without the password was answered")
	}
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Errorf("a client of URL() %s: %v", s.URL(), err)
	}
}
