// Package store opens Railyard's Redis connection, either to a real Redis
// server or to an embedded in-process one, and owns the key layout.
//
// Everything above this package talks go-redis; nothing here knows about
// pipelines, queues or GitHub.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Store is an open Redis connection and, for the embedded store, the
// in-process server behind it.
type Store struct {
	Redis    redis.UniversalClient
	embedded *miniredis.Miniredis
}

// ErrUnavailable marks errors caused by the store being unreachable.
var ErrUnavailable = errors.New("store unavailable")

// Open connects to url (redis:// or rediss://), or starts an embedded
// in-process store when url is empty.
func Open(ctx context.Context, url string) (*Store, error) {
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start embedded store: %w", err)
		}
		return &Store{Redis: redis.NewClient(&redis.Options{Addr: m.Addr()}), embedded: m}, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		// ParseURL errors may quote the URL, which may hold a password.
		return nil, errors.New("RAILYARD_REDIS_URL: not a valid redis:// or rediss:// URL")
	}
	// Fail fast rather than hang a webhook when Redis is gone.
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	opts.MaxRetries = 1
	return &Store{Redis: redis.NewClient(opts)}, nil
}

// Embedded reports whether the store lives inside this process and so
// loses its state on restart.
func (s *Store) Embedded() bool { return s.embedded != nil }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close closes the connection and stops an embedded server.
func (s *Store) Close() error {
	err := s.Redis.Close()
	if s.embedded != nil {
		s.embedded.Close()
	}
	return err
}
