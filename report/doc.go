// Package report is everything Railyard writes to GitHub: check runs,
// deployments and their statuses, comments and reactions.
//
// Callers say what GitHub should show, by a call per write or, inside a
// caller's Redis transaction, as Write values given to AddTx, so that they
// commit with the state change that causes them. Each only appends an
// operation to one of the repository's two outboxes in Redis and returns:
// the conversation (comments, reactions) or the status (check runs,
// deployments and their statuses). Run sends the outboxes, each class with
// its own senders and budget so that a person's reply never waits behind
// status traffic (budget.go: sliding windows, GitHub's holds, one status
// request at a time per installation across processes, and the record of
// long delays): one process at a time per outbox, retried on rate
// limits, 5xx and network errors, and removed only once GitHub accepted
// them. So a GitHub failure delays what is written, never loses it and
// never blocks the caller.
//
// A conversation outbox is sent strictly in order. A status outbox keeps
// order within one check run and within one deployment, not across them,
// and sends no write a later one has made obsolete: looking a bounded way
// ahead (maxLookahead), it merges a check run's unsent writes into its
// earliest, and drops a deployment status not final that a later status
// of the deployment follows. A provisional write (a check run created
// queued, a queued status) waits Options.ProvisionalHold for that to
// happen, while other objects' writes go: a job that starts at once never
// shows queued. Completions, final statuses, creates and comments are
// never dropped.
//
// Nor does it double it. Every create carries a mark Railyard can find
// again (a check run's external_id, a railyard_key in a deployment's
// payload, a hidden HTML comment in a comment), and a create tried before
// whose answer never came is first looked for on GitHub, and adopted when
// found. Updates send the whole state, so repeating one is harmless. A
// refusal is final only when it cannot pass: a 401, or a 404 on a
// repository GitHub still shows, is retried a few times first.
//
// The package knows nothing of stages or pipeline rules, and it must never
// block a caller on GitHub nor send a secret: every field is redacted and
// cut to GitHub's limits before it is stored.
package report
