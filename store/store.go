// Package store opens Railyard's Redis connection, to a real Redis server,
// a Redis Cluster or an embedded in-process one, and owns the key layout:
// a repository's keys share its hash tag, shared keys the tag {railyard}, so
// that no transaction or script spans two cluster slots. Pending indexes
// the per-repository outboxes that carry work from a repository's slot to
// a shared structure.
//
// Everything above this package talks go-redis; nothing here knows about
// pipelines, queues or GitHub.
package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Store is an open Redis connection and, for the embedded store, the
// in-process server behind it.
type Store struct {
	Redis    redis.UniversalClient
	embedded *miniredis.Miniredis
	// stopExpiry ends expireKeys; a second call does nothing.
	stopExpiry func()
}

// ErrUnavailable marks errors caused by the store being unreachable.
var ErrUnavailable = errors.New("store unavailable")

// Open connects to url (redis:// or rediss://), or starts an embedded
// in-process store when url is empty. With cluster, url names a Redis
// Cluster: its host is one node and any addr= parameters are more, as
// go-redis's ParseClusterURL reads them; the client finds the rest.
func Open(ctx context.Context, url string, cluster bool) (*Store, error) {
	if url == "" {
		return openEmbedded()
	}
	// Fail fast rather than hang a webhook when Redis is gone.
	const timeout = 2 * time.Second
	if cluster {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			// ParseClusterURL errors may quote the URL, which may hold a password.
			return nil, errors.New("RAILYARD_REDIS_URL: not a valid Redis Cluster URL (redis://host:port?addr=host:port&addr=…)")
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
		opts.MaxRetries = 1
		return &Store{Redis: redis.NewClusterClient(opts)}, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		// ParseURL errors may quote the URL, which may hold a password.
		return nil, errors.New("RAILYARD_REDIS_URL: not a valid redis:// or rediss:// URL")
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.MaxRetries = 1
	return &Store{Redis: redis.NewClient(opts)}, nil
}

// openEmbedded starts miniredis inside the process and connects to it over
// in-memory pipes: a round trip then costs a few microseconds instead of
// four system calls over loopback TCP (BENCHMARKS.md).
func openEmbedded() (*Store, error) {
	m := miniredis.NewMiniRedis()
	// miniredis also listens on a loopback port, which Railyard does not
	// use; a password nobody knows keeps other local users out of it.
	password := rand.Text()
	m.RequireAuth(password)
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start embedded store: %w", err)
	}
	stop := make(chan struct{})
	go expireKeys(m, stop)
	rdb := redis.NewClient(&redis.Options{
		Addr:     "embedded",
		Password: password,
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			client, server := pipe()
			m.Server().ServeConn(server) // serves it on its own goroutine
			return client, nil
		},
	})
	return &Store{Redis: rdb, embedded: m, stopExpiry: sync.OnceFunc(func() { close(stop) })}, nil
}

// EmbeddedExpiry is how often the embedded store expires keys: a key with
// a TTL lives up to this much longer than asked.
const EmbeddedExpiry = time.Second

// expireKeys lets the embedded store's TTLs run with the clock. miniredis
// only expires keys when told time has passed (it is made for tests), so
// without this every delivery's dedupe key, lock and lease would live
// forever. Its ClockTTL option would do the same on every command, and
// each pass visits every key: once a second costs far less.
func expireKeys(m *miniredis.Miniredis, stop <-chan struct{}) {
	tick := time.NewTicker(EmbeddedExpiry)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Embedded reports whether the store lives inside this process and so
// loses its state on restart.
func (s *Store) Embedded() bool { return s.embedded != nil }

// FastForward moves the embedded store's clock on by d: keys expire as if
// d had passed. Tests use it to live through hours in seconds; on Redis
// it does nothing.
func (s *Store) FastForward(d time.Duration) {
	if s.embedded != nil {
		s.embedded.FastForward(d)
	}
}

// Cluster reports whether the store is a Redis Cluster.
func (s *Store) Cluster() bool { return IsCluster(s.Redis) }

// IsCluster reports whether rdb is a Redis Cluster client, on which a
// transaction may touch the keys of one hash slot only. On one Redis a
// transaction spans any keys, and what a Cluster defers past EXEC (a
// repository's outboxes, package queue and report) commits with it.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}

// Ping checks that the store answers: on a cluster, every master, since
// each serves some repositories' keys.
func (s *Store) Ping(ctx context.Context) error {
	err := s.Redis.Ping(ctx).Err()
	if c, ok := s.Redis.(*redis.ClusterClient); ok && err == nil {
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close closes the connection and stops an embedded server.
func (s *Store) Close() error {
	err := s.Redis.Close()
	if s.embedded != nil {
		s.stopExpiry()
		s.embedded.Close()
	}
	return err
}
