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
// Where each behaviour lives:
//
//   - state.go: the persisted state (Pipeline, StageState, Job, Mode) and
//     what each Operation means (its running and done states, whether it
//     deploys, promotes, how a retry repeats it).
//   - core.go: the pure core. One method of Pipeline per operation
//     (Pipeline.Rollback, Pipeline.Cancel, …) and per step of a stage job
//     (Claim, WaitForGitHub, Finish, GiveUp), each a transition that
//     returns its Effects as plain data: jobs to queue, audit entries,
//     report.Write values for GitHub, the reply. Every rule and refusal
//     lives there once; the handlers ask CheckTarget before their own
//     checks (permission, gate) and the operation for the rest. No
//     context, store, runner or clock: a Moment brings the time and an id
//     seed. A stage job is made in one place (change.newJob).
//   - flow.go: how a job goes through a stage in the core (offer, wait,
//     start, preempt, kick) and what GitHub is shown at each step.
//   - render.go: all wording people see — check run titles, summaries
//     and buttons, deployment descriptions, refusal reasons, acceptance
//     texts, comment replies and /status — tested by golden files under
//     testdata/render.
//   - engine.go and ops.go: the shell. Engine.update loads the state in a
//     WATCH, runs one transition of the core, and commits the new state
//     with its effects in one MULTI (queue.AddTx for jobs,
//     Reporter.AddTx for GitHub), retrying on conflict; each operation of
//     Engine is one line of dispatch to its transition. Processes sharing
//     one Redis never lose a transition, and an aborted attempt leaves no
//     trace. The MULTI touches the repository's Redis Cluster slot only:
//     jobs and writes wait in the repository's outboxes, and committed
//     forwards them right after EXEC (a sweep, should the process die).
//   - run.go: running a stage job taken from the queue: its stage lock,
//     watching for cancellation, and the steps.
//
// The engine knows nothing of HTTP or webhook JSON.
package engine
