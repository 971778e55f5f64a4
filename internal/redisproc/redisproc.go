// Package redisproc runs a real redis-server for one test, on a free
// loopback port, so that the test can stop it, kill it and start it again
// on the same port: with the data it had (append-only file in its own
// directory) or empty, as after a restart without persistence.
//
// It is test-only and must not be imported by production code.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server the test controls. Its methods are for the
// test's goroutine.
type Server struct {
	t    testing.TB
	bin  string
	port string
	dir  string
	opts Options
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Options are how a Server differs from the default.
type Options struct {
	// Password, if set, is asked of every client (requirepass); URL
	// carries it.
	Password string
}

// Bin returns the redis-server on PATH, or skips t saying what is missing.
func Bin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("needs redis-server on PATH: the test stops and restarts its own Redis")
	}
	return bin
}

// Start runs redis-server (Bin) on a free port with an append-only file
// synced on every write, and returns once it answers. It is killed when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with opts.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Bin(t), dir: t.TempDir(), opts: opts}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, s.port, _ = net.SplitHostPort(l.Addr().String())
	l.Close()
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's redis:// URL, database 0, with its password if it
// has one.
func (s *Server) URL() string {
	if s.opts.Password != "" {
		return "redis://:" + s.opts.Password + "@" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Addr is the server's host:port; it stays the same across restarts.
func (s *Server) Addr() string { return "127.0.0.1:" + s.port }

// Stop shuts the server down as an operator would (SHUTDOWN by SIGTERM);
// what was written is kept for Restart.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill SIGKILLs the server, as a crash does. With every write synced to
// the append-only file, nothing acknowledged is lost.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Restart starts the stopped or killed server again on the same port with
// the data it kept, and returns once it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// RestartEmpty starts the stopped or killed server again on the same port
// without any of its data, as a restart without persistence or a failover
// to an empty replica does.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			s.t.Fatal(err)
		}
	}
	s.start()
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	<-s.done
	s.cmd = nil
}

func (s *Server) start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redisproc: start while the server runs")
	}
	args := []string{"--port", s.port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)

	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.opts.Password})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// LOADING is an error too: the server answers once its data is in.
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("redisproc: redis-server on port %s exited at start: %v", s.port, cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redisproc: redis-server on port %s did not answer: %v", s.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.Addr()) }
