// Package railyard holds what the whole module shares at its root: the
// GitHub App manifest, embedded so the binary carries it wherever it runs.
package railyard

import _ "embed"

// AppManifest is app.yml, the App's manifest for GitHub's manifest flow.
//
//go:embed app.yml
var AppManifest []byte
