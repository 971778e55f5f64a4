package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/handlers"
	"github.com/railyard/railyard/store"
)

// webhook is POST /api/github/hook: the signature is checked here, with
// SHA-256 only (go-github's ValidatePayload would accept SHA-1 and answers
// 400), and only here; then go-githubapp's dispatcher runs the handler.
func (s *Server) webhook(dispatch http.Handler) http.Handler {
	secret := []byte(s.env.WebhookSecret)
	log := s.log.Hook(dropDispatcherLine{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Until the signature checks, the event header is the sender's
		// word: it must not become a label.
		label := eventUnverified
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.metrics.observeWebhook(label, rec.status, time.Since(start)) }()
		// The dispatcher adds the event and delivery to the context's logger.
		r = r.WithContext(log.WithContext(r.Context()))

		body, held, err := s.bodies.read(r)
		if err != nil {
			s.refuseBody(rec, r, r.Header.Get("X-GitHub-Event"), err)
			return
		}
		valid := validSignature(secret, body, r.Header.Get("X-Hub-Signature-256"))
		s.bodies.give(held)
		if !valid {
			s.log.Warn().Str(githubapp.LogKeyEventType, r.Header.Get("X-GitHub-Event")).Str(githubapp.LogKeyDeliveryID, r.Header.Get("X-GitHub-Delivery")).Msg("Webhook with a missing or bad X-Hub-Signature-256; refused.")
			http.Error(rec, "missing or invalid X-Hub-Signature-256", http.StatusUnauthorized)
			return
		}
		label = s.metrics.event(r.Header.Get("X-GitHub-Event"))
		// The dispatcher has no secret: without signature headers go-github
		// checks nothing again (and never falls back to SHA-1).
		r.Header.Del("X-Hub-Signature-256")
		r.Header.Del("X-Hub-Signature")
		r.Body = io.NopCloser(bytes.NewReader(body))
		dispatch.ServeHTTP(rec, r)
	})
}

// refuseBody answers a delivery whose body was not read: too large (413),
// no budget left for it now (503, try later) or cut short (400).
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, event string, err error) {
	log := s.log.Warn().Str(githubapp.LogKeyEventType, event).Str(githubapp.LogKeyDeliveryID, r.Header.Get("X-GitHub-Delivery")).
		Int64("content_length", r.ContentLength)
	switch {
	case errors.Is(err, errBodyTooLarge):
		log.Msg("Webhook body over 25 MiB; refused.")
		http.Error(w, "request body over 25 MiB", http.StatusRequestEntityTooLarge)
	case errors.Is(err, errBodiesBusy):
		log.Msg("Too many webhook bodies in flight; answered 503.")
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many deliveries in flight, retry later", http.StatusServiceUnavailable)
	default:
		log.Err(err).Msg("Webhook body unreadable; refused.")
		http.Error(w, "request body unreadable", http.StatusBadRequest)
	}
}

func validSignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// onWebhookError maps handler errors to answers GitHub understands: a store
// outage is 503 so the delivery shows as failed and can be redelivered.
func onWebhookError(w http.ResponseWriter, r *http.Request, err error) {
	log := zerolog.Ctx(r.Context())
	var ve githubapp.ValidationError
	switch {
	case errors.As(err, &ve), handlers.IsBadPayload(err):
		log.Warn().Err(err).Msg("Malformed webhook; refused.")
		http.Error(w, "malformed webhook", http.StatusBadRequest)
	case errors.Is(err, store.ErrUnavailable):
		log.Error().Err(err).Msg("Store unavailable; webhook not taken.")
		http.Error(w, "store unavailable, redeliver later", http.StatusServiceUnavailable)
	default:
		log.Error().Err(err).Msg("Webhook failed.")
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// onWebhookResponse answers 202: the work happens later on the queue.
func onWebhookResponse(w http.ResponseWriter, r *http.Request, event string, handled bool) {
	switch {
	case event == "ping":
		zerolog.Ctx(r.Context()).Info().Msg("Ping answered.")
		w.WriteHeader(http.StatusOK)
		return
	case !handled:
		zerolog.Ctx(r.Context()).Info().Msg("Event Railyard does not handle; ignoring.")
	}
	w.WriteHeader(http.StatusAccepted)
}

// dropDispatcherLine keeps each delivery to one log line. go-githubapp's
// dispatcher logs "Received webhook event" for every delivery, before the
// handler logs what it did with it (queued, or ignored and why) under the
// same event and delivery id; that second line is the one worth keeping,
// and the only one at 1,000 deliveries a second.
type dropDispatcherLine struct{}

func (dropDispatcherLine) Run(e *zerolog.Event, level zerolog.Level, msg string) {
	if level == zerolog.InfoLevel && msg == "Received webhook event" {
		e.Discard()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
