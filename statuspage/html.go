package statuspage

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": func(sha string) string { return sha[:min(7, len(sha))] },
	"human": func(state string) string { return strings.ReplaceAll(state, "_", " ") },
	"stamp": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(pageSource))

// page is what the HTML template renders: the JSON document plus links.
type page struct {
	*status
	web     string // GitHub web URL ending in "/"
	Warning string
}

// CommitURL links a revision of the repository on GitHub.
func (p page) CommitURL(sha string) string {
	return p.web + p.Repository + "/commit/" + sha
}

func (h *handler) serveHTML(w http.ResponseWriter, r *http.Request) {
	st, err := h.load(r)
	if err != nil {
		http.Error(w, err.Error(), codeOf(err))
		return
	}
	// Rendered to a buffer so a template failure is a clean 500, not half
	// a page.
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, page{status: st, web: h.web, Warning: h.warn}); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Status page did not render.")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No script runs on this page; say so, so an injected one cannot either.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_, _ = buf.WriteTo(w)
}
