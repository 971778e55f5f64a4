package store

import (
	"bytes"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipe returns the two ends of an in-memory connection. Unlike net.Pipe, a
// write never waits for the reader: go-redis writes a whole pipeline before
// it reads a reply, and miniredis writes each reply as it reads a command,
// so with bounded buffers a pipeline of large replies deadlocks both sides.
// What a pipe holds is what one side wrote and the other has not read yet;
// both sides are in this process and read until the connection closes.
func pipe() (net.Conn, net.Conn) {
	a, b := newStream(), newStream()
	return &pipeEnd{in: a, out: b}, &pipeEnd{in: b, out: a}
}

// pipeEnd is one end of a pipe: it reads in and writes out.
type pipeEnd struct{ in, out *stream }

func (e *pipeEnd) Read(p []byte) (int, error)  { return e.in.read(p) }
func (e *pipeEnd) Write(p []byte) (int, error) { return e.out.write(p) }

// Close ends both directions: the other end reads what was written before
// it, then io.EOF; reads waiting on this end return net.ErrClosed.
func (e *pipeEnd) Close() error {
	e.out.closeWriter()
	e.in.closeReader()
	return nil
}

func (e *pipeEnd) SetDeadline(t time.Time) error {
	e.in.setReadDeadline(t)
	e.out.setWriteDeadline(t)
	return nil
}

func (e *pipeEnd) SetReadDeadline(t time.Time) error  { e.in.setReadDeadline(t); return nil }
func (e *pipeEnd) SetWriteDeadline(t time.Time) error { e.out.setWriteDeadline(t); return nil }
func (e *pipeEnd) LocalAddr() net.Addr                { return pipeAddr{} }
func (e *pipeEnd) RemoteAddr() net.Addr               { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "embedded" }

// stream is one direction of a pipe. All its fields are guarded by mu;
// cond wakes readers when data arrives, an end closes or the read
// deadline changes or passes.
type stream struct {
	mu            sync.Mutex
	cond          sync.Cond
	buf           bytes.Buffer
	writerClosed  bool // the writing end closed: reads drain buf, then io.EOF
	readerClosed  bool // the reading end closed: nothing more is read
	readDeadline  time.Time
	writeDeadline time.Time
	timer         *time.Timer // wakes readers at readDeadline
}

func newStream() *stream {
	s := &stream{}
	s.cond.L = &s.mu
	return s
}

// keepBuffer is the most a drained buffer keeps allocated; a larger one,
// left by a large pipeline, is released.
const keepBuffer = 64 << 10

func (s *stream) read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.readerClosed:
			return 0, net.ErrClosed
		case passed(s.readDeadline):
			return 0, os.ErrDeadlineExceeded
		case s.buf.Len() > 0:
			n, _ := s.buf.Read(p)
			if s.buf.Len() == 0 && s.buf.Cap() > keepBuffer {
				s.buf = bytes.Buffer{}
			}
			return n, nil
		case s.writerClosed:
			return 0, io.EOF
		}
		s.cond.Wait()
	}
}

func (s *stream) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.writerClosed:
		return 0, net.ErrClosed
	case s.readerClosed:
		return 0, io.ErrClosedPipe
	case passed(s.writeDeadline):
		return 0, os.ErrDeadlineExceeded
	}
	s.buf.Write(p)
	s.cond.Broadcast()
	return len(p), nil
}

func (s *stream) closeWriter() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writerClosed = true
	s.cond.Broadcast()
}

func (s *stream) closeReader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readerClosed = true
	s.buf = bytes.Buffer{} // nobody will read it
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cond.Broadcast()
}

func (s *stream) setReadDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readDeadline = t
	switch {
	case t.IsZero() && s.timer != nil:
		s.timer.Stop()
	case t.IsZero():
	case s.timer == nil:
		s.timer = time.AfterFunc(time.Until(t), s.wake)
	default:
		s.timer.Reset(time.Until(t))
	}
	s.cond.Broadcast() // a waiting read checks the new deadline
}

func (s *stream) setWriteDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeDeadline = t // writes never wait, so only a passed one matters
}

func (s *stream) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cond.Broadcast()
}

func passed(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}
