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
// long delays): one process at a time per outbox, strictly in order,
// retried on rate limits, 5xx and network errors, and removed only once
// GitHub accepted them. So a GitHub failure delays what is written, never
// loses it and never blocks the caller.
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
