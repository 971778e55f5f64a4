package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestOpenEmbedded(t *testing.T) {
	s, err := Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Embedded() {
		t.Error("empty URL should give the embedded store")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("ping embedded store: %v", err)
	}
}

func TestOpenBadURLDoesNotLeakPassword(t *testing.T) {
	_, err := Open(context.Background(), "http://user:hunter2@example")
	if err == nil {
		t.Fatal("expected an error for a non-redis URL")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Errorf("error leaks the password: %q", got)
	}
}

func TestPingUnreachable(t *testing.T) {
	s, err := Open(context.Background(), "redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ping of a closed port = %v, want ErrUnavailable", err)
	}
}

func TestKeysShareRepoHashTag(t *testing.T) {
	a, b := RepoKey("Octo/App", "state"), RepoKey("octo/app", "audit")
	tag := func(k string) string { return k[strings.IndexByte(k, '{') : strings.IndexByte(k, '}')+1] }
	if tag(a) != "{octo/app}" || tag(a) != tag(b) {
		t.Errorf("keys %q and %q should share the tag {octo/app}", a, b)
	}
}
