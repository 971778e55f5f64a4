// Package report is everything Railyard writes to GitHub: check runs,
// deployments and their statuses, comments and reactions.
//
// Callers say what GitHub should show; each call only appends an operation
// to the repository's outbox in Redis and returns. Run sends the outboxes:
// one process at a time per repository, strictly in order, paced to
// GitHub's secondary rate limits, retried on rate limits, 5xx and network
// errors, and removed only once GitHub accepted them. So a GitHub failure
// delays what is written, never loses it and never blocks the caller.
//
// The package knows nothing of stages or pipeline rules, and it must never
// block a caller on GitHub nor send a secret: every field is redacted and
// cut to GitHub's limits before it is stored.
package report
