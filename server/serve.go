package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
)

// Serve runs Railyard on env.Addr until ctx is done. Without App
// credentials it first serves setup mode, and switches to normal serving on
// the same address once setup has written them; then it shuts down
// gracefully: requests in flight finish and jobs in hand go back to the
// queue for another process.
func Serve(ctx context.Context, env config.Env, log zerolog.Logger, dotenvPath string) error {
	ln, err := net.Listen("tcp", env.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", env.Addr, err)
	}
	var current atomic.Pointer[http.Handler]
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*current.Load()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	starting := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	current.Store(&starting)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}

	if env.SetupMode() {
		if env, err = runSetup(ctx, env, log, dotenvPath, func(h http.Handler) { current.Store(&h) }); err != nil {
			shutdown()
			return err
		}
	}

	s, err := New(ctx, env, log, Options{})
	if err != nil {
		shutdown()
		return err
	}
	defer s.Close()
	stop, err := s.Start(ctx)
	if err != nil {
		shutdown()
		return err
	}
	defer stop()
	h := s.Handler()
	current.Store(&h)
	log.Info().Str("addr", ln.Addr().String()).Str("version", Version).Int("workers", env.Workers).Msg("Railyard is listening.")

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	log.Info().Msg("Shutting down.")
	return shutdown()
}
