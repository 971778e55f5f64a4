package server

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// maxWebhookBody caps a delivery; GitHub caps payloads at 25 MB.
const maxWebhookBody = 25 << 20

var (
	errBodyTooLarge = errors.New("webhook body over 25 MiB")
	errBodiesBusy   = errors.New("the memory for unchecked webhook bodies is in use")
)

// bodyBudget is the memory all requests together may hold for webhook
// bodies whose signature is not yet checked: without it, anyone can make
// the bot allocate 25 MB per connection before it refuses them. A mutex
// and a number, since nothing ever waits for budget: a request that does
// not fit is answered 503 at once.
type bodyBudget struct {
	mu   sync.Mutex
	free int64
}

func newBodyBudget(size int64) *bodyBudget { return &bodyBudget{free: size} }

func (b *bodyBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.free {
		return false
	}
	b.free -= n
	return true
}

func (b *bodyBudget) give(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
}

// read reads a delivery of at most maxWebhookBody bytes into memory taken
// from the budget first, and returns how much it took: the caller gives
// it back once the signature is checked. With a Content-Length, GitHub's
// way, the body goes into one buffer of that size (payloads are large and
// every push copies one) and not a byte more is read; without one, the
// buffer's growth is taken from the budget before each read.
func (b *bodyBudget) read(r *http.Request) (body []byte, held int64, err error) {
	if n := r.ContentLength; n >= 0 {
		if n > maxWebhookBody {
			return nil, 0, errBodyTooLarge
		}
		if !b.take(n) {
			return nil, 0, errBodiesBusy
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			b.give(n)
			return nil, 0, err
		}
		return buf, n, nil
	}
	var buf []byte
	for {
		if len(buf) == maxWebhookBody {
			// Full: a byte more is a body over the cap.
			var one [1]byte
			n, err := io.ReadFull(r.Body, one[:])
			switch {
			case n > 0:
				err = errBodyTooLarge
			case errors.Is(err, io.EOF):
				return buf, held, nil
			}
			b.give(held)
			return nil, 0, err
		}
		if len(buf) == cap(buf) {
			grow := min(max(cap(buf), 32<<10), maxWebhookBody-cap(buf))
			if !b.take(int64(grow)) {
				b.give(held)
				return nil, 0, errBodiesBusy
			}
			held += int64(grow)
			buf = append(make([]byte, 0, cap(buf)+grow), buf...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, held, nil
		case err != nil:
			b.give(held)
			return nil, 0, err
		}
	}
}
