package setup

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"

	"github.com/rs/zerolog"
)

//go:embed templates/*.html
var templateFiles embed.FS

var (
	indexPage   = parsePage("templates/index.html")
	donePage    = parsePage("templates/done.html")
	messagePage = parsePage("templates/message.html")
)

func parsePage(name string) *template.Template {
	return template.Must(template.ParseFS(templateFiles, "templates/layout.html", name))
}

type indexData struct {
	Home         string
	Public       string // this server's URL, as GitHub would be told
	Unreachable  string // why GitHub cannot reach Public; "" when nothing says so
	Name         string
	Permissions  []permission
	Events       []string
	HookURL      string
	CallbackURL  string
	Dotenv       string
	Manifest     string // JSON, posted to GitHub
	Organization string
	Problem      string
}

type permission struct{ Name, Level string }

type doneData struct {
	Home        string
	Public      string
	Unreachable string // as in indexData: registered anyway
	Name        string
	ID          int64
	InstallURL  string
	Dotenv      string
}

type message struct {
	Home   string
	Title  string
	Text   string
	Detail string // an error's text; never holds a secret
}

func (h *Handler) renderIndex(w http.ResponseWriter, r *http.Request, status int, org, problem string) {
	public, err := h.publicURL(r)
	if err != nil {
		h.renderMessage(w, r, http.StatusBadRequest, message{
			Title: "Cannot tell this server's address",
			Text: "GitHub must be told where to reach Railyard, and the request does not say. " +
				"Set RAILYARD_PUBLIC_URL to the URL GitHub and your browser use, and restart.",
		})
		return
	}
	m := h.manifest.forServer(public)
	js, err := json.Marshal(m)
	if err != nil { // cannot happen: the manifest holds strings, bools, maps and slices
		h.fail(w, r, err)
		return
	}
	d := indexData{
		Home:         h.home(),
		Public:       public,
		Unreachable:  unreachable(public),
		Name:         m.Name,
		Events:       m.DefaultEvents,
		HookURL:      m.HookAttributes.URL,
		CallbackURL:  m.RedirectURL,
		Dotenv:       h.opts.DotenvPath,
		Manifest:     string(js),
		Organization: org,
		Problem:      problem,
	}
	for _, p := range slices.Sorted(maps.Keys(m.DefaultPermissions)) {
		d.Permissions = append(d.Permissions, permission{p, m.DefaultPermissions[p]})
	}
	h.render(w, r, status, indexPage, d)
}

func (h *Handler) renderDone(w http.ResponseWriter, r *http.Request, app *registeredApp) {
	d := doneData{Home: h.home(), Name: app.name, ID: app.id, InstallURL: app.installURL, Dotenv: h.opts.DotenvPath}
	if public, err := h.publicURL(r); err == nil {
		d.Public, d.Unreachable = public, unreachable(public)
	}
	h.render(w, r, http.StatusOK, donePage, d)
}

func (h *Handler) renderMessage(w http.ResponseWriter, r *http.Request, status int, m message) {
	m.Home = h.home()
	h.render(w, r, status, messagePage, m)
}

// render executes the page first, so a failure is a clean 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page *template.Template, data any) {
	var buf bytes.Buffer
	if err := page.ExecuteTemplate(&buf, "layout", data); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	zerolog.Ctx(r.Context()).Error().Err(err).Msg("Could not render a setup page.")
	http.Error(w, "internal error", http.StatusInternalServerError)
}
