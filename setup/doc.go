// Package setup is Railyard's first-run mode (docs/reference.md#setup-mode):
// while the bot has no GitHub App credentials it serves a page that
// registers the App described by app.yml through GitHub's App manifest flow,
// exchanges the code GitHub sends back for the App's credentials, writes them
// to .env and signals Done, after which the bot serves normally.
//
// It must not serve webhooks or touch repositories, and it must never put a
// credential, nor the one-time manifest code, into a page, a log line or an
// error string.
package setup
