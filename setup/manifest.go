package setup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// manifest is a GitHub App manifest, read from app.yml and sent to GitHub as
// JSON. Its fields are the ones GitHub's manifest flow documents, so a typo in
// app.yml is an error rather than a setting GitHub silently ignores.
type manifest struct {
	Name                  string            `yaml:"name" json:"name"`
	URL                   string            `yaml:"url" json:"url"`
	Description           string            `yaml:"description" json:"description,omitempty"`
	Public                *bool             `yaml:"public" json:"public,omitempty"`
	HookAttributes        hookAttributes    `yaml:"hook_attributes" json:"hook_attributes"`
	RedirectURL           string            `yaml:"redirect_url" json:"redirect_url"`
	CallbackURLs          []string          `yaml:"callback_urls" json:"callback_urls,omitempty"`
	SetupURL              string            `yaml:"setup_url" json:"setup_url,omitempty"`
	SetupOnUpdate         *bool             `yaml:"setup_on_update" json:"setup_on_update,omitempty"`
	RequestOAuthOnInstall *bool             `yaml:"request_oauth_on_install" json:"request_oauth_on_install,omitempty"`
	DefaultPermissions    map[string]string `yaml:"default_permissions" json:"default_permissions,omitempty"`
	DefaultEvents         []string          `yaml:"default_events" json:"default_events,omitempty"`
}

type hookAttributes struct {
	URL    string `yaml:"url" json:"url"`
	Active *bool  `yaml:"active" json:"active,omitempty"`
}

// maxNameLen is GitHub's limit on App names.
const maxNameLen = 34

// readManifest reads and checks the manifest at path. All problems are
// reported together.
func readManifest(path string) (manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return manifest{}, fmt.Errorf("read App manifest: %w", err)
	}
	var m manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return manifest{}, fmt.Errorf("App manifest %s: %w", path, err)
	}

	var errs []error
	switch name := strings.TrimSpace(m.Name); {
	case name == "":
		errs = append(errs, errors.New("name is missing"))
	case len([]rune(name)) > maxNameLen:
		errs = append(errs, fmt.Errorf("name %q is longer than GitHub's %d characters", name, maxNameLen))
	}
	for p, level := range m.DefaultPermissions {
		if level != "read" && level != "write" && level != "admin" {
			errs = append(errs, fmt.Errorf("default_permissions: %s: %q is not read, write or admin", p, level))
		}
	}
	seen := map[string]bool{}
	for _, e := range m.DefaultEvents {
		switch {
		case strings.TrimSpace(e) == "":
			errs = append(errs, errors.New("default_events: an event name is empty"))
		case seen[e]:
			errs = append(errs, fmt.Errorf("default_events: %s is listed twice", e))
		}
		seen[e] = true
	}
	if err := errors.Join(errs...); err != nil {
		return manifest{}, fmt.Errorf("App manifest %s: %w", path, err)
	}
	return m, nil
}

// forServer returns the manifest with its URLs pointing at this server, reached by
// GitHub and the browser at public (no trailing slash).
func (m manifest) forServer(public string) manifest {
	m.URL = public
	m.HookAttributes.URL = public + hookPath
	m.RedirectURL = public + callbackPath
	return m
}
