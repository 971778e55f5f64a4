// Package setup is Railyard's first-run mode (docs/reference.md#setup-mode):
// while the bot has no GitHub App
// credentials it serves a page that registers the App described by app.yml
// through GitHub's App manifest flow, exchanges the code GitHub sends back for
// the App's credentials, writes them to .env and signals Done, after which the
// bot serves normally.
//
// GitHub.com cannot deliver webhooks to a loopback, private, link-local or
// .local address. When the URL GitHub would be given is one, the page says so
// before anything is registered and tells how to put a tunnel in front; it
// registers such an address only on an explicit "Register anyway", for a
// GitHub Enterprise Server that can reach it.
//
// A registration belongs to the browser that pressed Register: the state
// GitHub echoes back is honoured only together with the HttpOnly, SameSite=Lax
// cookie set with it, so a state fetched by anyone else exchanges no code and
// writes nothing.
//
// It must not serve webhooks or touch repositories, and it must never put a
// credential, nor the one-time manifest code, into a page, a log line or an
// error string.
package setup
