// Package engine is Railyard's pipeline state machine: the state of every
// stage, the operations of docs/reference.md#operations with their refusals,
// promotion, and the execution of stage jobs taken from the queue.
//
// The engine knows nothing of HTTP or webhook JSON. It keeps state in Redis
// (one JSON document per repository, changed only in optimistic WATCH/MULTI
// transactions, so processes sharing one Redis never lose a transition),
// queues stage jobs in the same transaction as the state change that makes
// them, and says what GitHub should show through a Reporter. The
// transaction touches the repository's Redis Cluster slot only: jobs and
// reports wait in the repository's outboxes and are forwarded right after
// EXEC (committed in engine.go).
package engine
