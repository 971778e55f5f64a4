// Package handlers adapts GitHub webhooks to Railyard: one file and one
// type per event. On the request path a handler only decodes, filters and
// enqueues (no GitHub API call, nothing that waits on GitHub); the work runs
// later on the queue, in the processors of this package, which call the
// engine.
package handlers
