// Package command parses Railyard's slash commands
// (docs/reference.md#commands) out of pull request and issue comment bodies.
//
// It is pure: a comment body goes in, an ordered list of commands or
// user-facing syntax errors comes out. It checks the syntax of every value
// strictly, so that nothing shaped like shell, a path or a ref expression
// gets past it, but it knows nothing of GitHub, the store or the pipeline
// file: whether a stage or step exists, whether to= resolves and whether
// the commenter may run the command are the caller's checks.
//
// One table (Specs) describes every command; parsing, validation and the
// /help reply are all driven by it.
package command
