// Package config reads Railyard's two kinds of configuration: the process
// environment (with an optional .env file) and a repository's pipeline file,
// .github/railyard.yml, which it parses, validates with line numbers and
// loads from GitHub with a per-commit cache.
//
// It only reads and checks configuration: it starts nothing, runs no steps,
// writes nothing to GitHub, and never puts a secret value into an error,
// a log line or a formatted Env.
package config
