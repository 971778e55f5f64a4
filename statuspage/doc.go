// Package statuspage serves Railyard's read-only status pages
// (docs/reference.md#status-pages):
// GET /status/{owner}/{repo} renders a repository's pipeline as HTML, and
// GET /api/status/{owner}/{repo} returns the same state as JSON.
//
// The pages only read: they must never change pipeline state, start jobs or
// call GitHub. They see the engine through the small Source interface, so
// they know nothing of Redis or the queue. The HTML is server-rendered with
// html/template and carries no JavaScript.
package statuspage
