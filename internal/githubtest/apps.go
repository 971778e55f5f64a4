package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// appKey is the App's private key, generated once per test binary because
// RSA key generation is slow.
var appKey = sync.OnceValues(func() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate App key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), nil
})

// PrivateKeyPEM is the App's private key (PKCS#1 PEM, as GitHub hands out).
func (s *Server) PrivateKeyPEM() []byte {
	key, err := appKey()
	if err != nil {
		s.t.Fatalf("githubtest: %v", err)
	}
	return slices.Clone(key)
}

// ClientCreator returns go-githubapp's client creator for App AppID, pointed
// at the fake.
func (s *Server) ClientCreator() githubapp.ClientCreator {
	return githubapp.NewClientCreator(s.URL, s.URL+"api/graphql", AppID, s.PrivateKeyPEM())
}

// InstallationClient returns a go-github client authenticated as
// installation id, as Railyard's own clients are.
func (s *Server) InstallationClient(t testing.TB, id int64) *github.Client {
	t.Helper()
	c, err := s.ClientCreator().NewInstallationClient(id)
	if err != nil {
		t.Fatalf("githubtest: installation client: %v", err)
	}
	return c
}

// ManifestApp is what the App manifest conversion hands out.
type ManifestApp struct {
	ID                                          int64
	Slug, ClientID, ClientSecret, WebhookSecret string
	PEM                                         []byte
}

// AddManifestCode makes code exchangeable, once, at
// POST /app-manifests/{code}/conversions, for the fake's own App and key.
func (s *Server) AddManifestCode(code string) ManifestApp {
	app := ManifestApp{
		ID: AppID, Slug: AppSlug, ClientID: "Iv1." + AppSlug,
		ClientSecret: randomToken(""), WebhookSecret: randomToken(""), PEM: s.PrivateKeyPEM(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifestCodes[code] = app
	return app
}

func (s *Server) convertManifest(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.manifestCodes[req.PathValue("code")]
	if !ok {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	delete(s.manifestCodes, req.PathValue("code")) // codes are single use
	j := s.appJSON(app.ID, app.Slug, "Railyard")
	j["client_id"], j["client_secret"], j["webhook_secret"], j["pem"] = app.ClientID, app.ClientSecret, app.WebhookSecret, string(app.PEM)
	s.writeJSON(w, http.StatusCreated, j)
}

// createToken issues an installation access token valid for an hour.
func (s *Server) createToken(w http.ResponseWriter, req *http.Request) {
	id := pathID(req, "installation_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	known := false
	for _, r := range s.repos {
		known = known || r.installationID == id
	}
	if !known {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	token := randomToken("ghs_")
	s.tokens[token] = id
	s.writeJSON(w, http.StatusCreated, obj{
		"token": token, "expires_at": timestamp(time.Now().Add(time.Hour)),
		"permissions": appPermissions, "repository_selection": "selected",
	})
}

func (s *Server) getApp(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, s.appJSON(AppID, AppSlug, "Railyard"))
}

func (s *Server) getRepoInstallation(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, s.installationJSON(r.installationID, r.owner))
}
