package server

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/runner"
)

// isolationOffWarning is shown in the log and on the status pages while
// steps run unconfined.
const isolationOffWarning = "Step isolation is off (RAILYARD_STEP_ISOLATION=off): pipeline steps run as the bot's user, " +
	"unconfined, and can read its webhook secret, App key and Redis password."

// stepSandbox confines steps as env asks and logs which protections are
// active. It makes this process non-dumpable, so that no process of the
// same user can read its memory or environment through /proc or ptrace.
// It fails rather than run steps less isolated than asked (SECURITY.md).
func stepSandbox(env config.Env, log zerolog.Logger) (*runner.Sandbox, error) {
	if env.StepIsolationOff {
		log.Warn().Msg(isolationOffWarning)
		return nil, nil
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("step isolation: make the bot non-dumpable: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("step isolation: %w", err)
	}
	// The bot's own files: its directory (unless that is /, which holds
	// everything), every step's folders but the step's own, its .env (even
	// when its directory is /) and its key file.
	hidden := []string{env.WorkDir}
	if cwd != "/" {
		hidden = append(hidden, cwd)
	}
	sb, err := runner.NewSandbox(runner.SandboxOptions{User: env.StepUser, Hidden: hidden,
		Secrets: []string{filepath.Join(cwd, config.DotenvPath), env.PrivateKeyFile}})
	if err != nil {
		return nil, err
	}
	if err := sb.Reachable(env.WorkDir); err != nil {
		return nil, err
	}
	log.Info().Object("isolation", sb).Bool("non_dumpable", true).Msg("Steps are isolated from the bot's secrets.")
	return sb, nil
}

// isolationWarning is what the status pages warn of, if anything.
func isolationWarning(env config.Env) string {
	if env.StepIsolationOff {
		return isolationOffWarning
	}
	return ""
}
