// Package statuspage serves Railyard's read-only status pages
// (docs/reference.md#status-pages):
// GET /status/{owner}/{repo} renders a repository's pipeline as HTML, and
// GET /api/status/{owner}/{repo} returns the same state as JSON.
//
// The pages only read: they must never change pipeline state, start jobs or
// call GitHub. They see the engine through the small Source interface, so
// they know nothing of Redis or the queue. The HTML is server-rendered with
// html/template and carries no JavaScript.
//
// With a user and password every answer, even a 404, first asks for HTTP
// basic auth, and the credentials are compared in constant time. The package
// serves without them only when given none: package config refuses
// RAILYARD_STATUS_PAGE=on without credentials, so open pages are always the
// operator's explicit RAILYARD_STATUS_PAGE=public, which the server logs.
package statuspage
