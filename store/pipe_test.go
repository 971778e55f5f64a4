package store

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestPipeIsANetConn runs x/net's conformance suite for net.Conn: data in
// order, concurrent reads and writes, deadlines past, present and future,
// and Close unblocking both ends.
func TestPipeIsANetConn(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		a, b := pipe()
		return a, b, func() { a.Close(); b.Close() }, nil
	})
}

// TestPipeWritesDoNotWaitForTheReader: what makes go-redis pipelines safe on
// the embedded store; net.Pipe would block on the first write here.
func TestPipeWritesDoNotWaitForTheReader(t *testing.T) {
	a, b := pipe()
	defer a.Close()
	defer b.Close()
	chunk := make([]byte, 64<<10)
	for range 64 { // 4 MiB with nobody reading
		if _, err := a.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	n, err := io.Copy(io.Discard, b)
	if err != nil || n != 64*int64(len(chunk)) {
		t.Errorf("the other end read %d bytes, %v; want %d then io.EOF", n, err, 64*len(chunk))
	}
}

func TestPipeClose(t *testing.T) {
	t.Run("the other end reads what was written, then EOF", func(t *testing.T) {
		a, b := pipe()
		defer b.Close()
		a.Write([]byte("last words"))
		a.Close()
		got, err := io.ReadAll(b)
		if string(got) != "last words" || err != nil {
			t.Errorf("read %q, %v; want %q and EOF", got, err, "last words")
		}
		if _, err := b.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("write to a closed end = %v, want io.ErrClosedPipe", err)
		}
	})
	t.Run("unblocks waiting reads on both ends", func(t *testing.T) {
		a, b := pipe()
		defer b.Close()
		errs := make(chan error, 2)
		for _, c := range []net.Conn{a, b} {
			go func() {
				_, err := c.Read(make([]byte, 1))
				errs <- err
			}()
		}
		a.Close()
		got := []error{<-errs, <-errs}
		closed := errors.Is(got[0], net.ErrClosed) || errors.Is(got[1], net.ErrClosed)
		eof := errors.Is(got[0], io.EOF) || errors.Is(got[1], io.EOF)
		if !closed || !eof {
			t.Errorf("reads returned %v; want net.ErrClosed on the closed end and io.EOF on the other", got)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write on a closed end = %v, want net.ErrClosed", err)
		}
	})
}

func TestPipeReadDeadline(t *testing.T) {
	a, b := pipe()
	defer a.Close()
	defer b.Close()
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := b.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline = %v, want a timeout", err)
	}
	// A cleared deadline lets reads wait again, for data written later.
	b.SetReadDeadline(time.Time{})
	go a.Write([]byte("x"))
	if n, err := b.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Errorf("read after clearing the deadline = %d, %v", n, err)
	}
}
