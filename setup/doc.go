// Package setup is Railyard's first-run mode: while the bot has no GitHub App
// credentials it serves a page that registers the App described by app.yml
// through GitHub's App manifest flow, exchanges the code GitHub sends back for
// the App's credentials, writes them to .env and signals Done, after which the
// bot serves normally.
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
