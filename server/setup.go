package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/setup"
)

// runSetup serves setup mode until the App's credentials are written, then
// returns the environment read again with them.
func runSetup(ctx context.Context, env config.Env, log zerolog.Logger, dotenvPath string, serve func(http.Handler)) (config.Env, error) {
	manifest := "app.yml"
	if _, err := os.Stat(manifest); err != nil {
		// Outside the checkout (a container): use the embedded copy.
		dir, err := os.MkdirTemp("", "railyard-setup")
		if err != nil {
			return env, err
		}
		defer os.RemoveAll(dir)
		manifest = filepath.Join(dir, "app.yml")
		if err := os.WriteFile(manifest, railyard.AppManifest, 0o644); err != nil {
			return env, err
		}
	}
	h, err := setup.New(setup.Options{
		ManifestPath: manifest, DotenvPath: dotenvPath,
		PublicURL: env.PublicURL, WebURL: env.WebURL, V3APIURL: env.V3APIURL,
	})
	if err != nil {
		return env, fmt.Errorf("setup mode: %w", err)
	}
	serve(h)
	where := env.PublicURL
	if where == "" {
		host := env.Addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		where = "http://" + host
	}
	log.Warn().Str("url", where+"/").Msg("No GitHub App credentials: setup mode. Open this page to register the App on GitHub.")
	select {
	case <-ctx.Done():
		return env, ctx.Err()
	case <-h.Done():
	}
	env, err = config.LoadEnv(os.LookupEnv, dotenvPath)
	if err != nil {
		return env, fmt.Errorf("reload configuration after setup: %w", err)
	}
	log.Info().Int64("app_id", env.AppID).Msg("GitHub App registered; credentials written to .env. Install the App on your repositories.")
	return env, nil
}
