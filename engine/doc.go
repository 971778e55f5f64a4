// Package engine is Railyard's pipeline state machine: the state of every
// stage, the operations of docs/reference.md#operations with their refusals,
// promotion, and the life of stage jobs taken from the queue (run.go: the
// stage lock, cancellation, waiting for GitHub, and the transition at the
// end).
//
// Running a job's steps is package stagejob's: reading the pipeline file,
// secrets, the workspace, run and workflow steps, skip rules and verify.
// The engine calls it once per job (runSteps) and turns its Result into
// the stage's next state.
//
// The engine knows nothing of HTTP or webhook JSON. It keeps state in Redis
// (one JSON document per repository, changed only in optimistic WATCH/MULTI
// transactions, so processes sharing one Redis never lose a transition),
// queues stage jobs in the same transaction as the state change that makes
// them, and says what GitHub should show through a Reporter.
package engine
