// Package handlers adapts GitHub webhooks to Railyard: one file and one
// type per event. On the request path a handler only decodes, filters and
// enqueues (no GitHub API call, nothing that waits on GitHub); the work runs
// later on the queue, in the processors of this package (processors.go for
// pushes, commands.go for comments and button clicks), which call the
// engine. They hold no pipeline rule and no wording of their own: the
// engine says whether an operation is allowed (engine.CheckTarget, then the
// operation itself) and words every reply and check run (engine/render.go);
// the handlers add what needs GitHub or the pipeline file's permissions:
// resolving revisions, the commenter's permission, and the gate.
package handlers
