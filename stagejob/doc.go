// Package stagejob runs one stage job: it reads the pipeline file at the
// job's config commit, loads the secrets granted to the stage, brings the
// revision into a workspace, runs the stage's steps (shell steps through
// package runner, workflow steps through package actions), applies the
// skip rules (skip=, infra steps on rollbacks) and the health check
// (verify), and says how it went as a plain Result.
//
// It decides nothing about the pipeline: which state the stage takes,
// promotion, auto-rollback and what GitHub shows are the engine's (package
// engine calls Run and turns the Result into a transition). It keeps no
// state, touches no Redis and never imports the engine.
//
// A failure to read from GitHub that can pass (package transient) is no
// failure of the job: the Result says the job must wait (Waiting), and the
// caller runs it again later.
package stagejob
