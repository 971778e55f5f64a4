// Package runner turns a revision into a directory and runs shell steps in it:
// it fetches a repository's tarball from GitHub, unpacks it safely into a
// work directory (never writing outside it), caches unpacked revisions, and
// runs `sh -c` steps in their own process group with a clean environment, a
// timeout and a bounded, redacted output tail.
//
// It knows nothing of stages, pipelines, Redis or check runs, and it must
// not pass any of the bot's own environment to a step.
//
// With a Sandbox, a step runs confined (SECURITY.md): the bot's binary is
// re-executed as a launcher (MaybeRunSandbox, called first thing in main
// and in the TestMain of packages whose tests confine steps) that drops to
// the step user when the bot is root, applies Landlock and execs the shell.
//
// Run makes the process a child subreaper (Linux) so that the orphans of a
// step are reparented to it and reaped when Run stops the step's process
// group; otherwise, under an init that does not reap, they would linger as
// zombies.
package runner
