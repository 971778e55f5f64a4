// Command bot runs Railyard: `bot` serves, `bot validate [FILE]` checks a
// pipeline file, `bot jobs` lists and replays dead-lettered jobs, `bot
// version` prints the version. It only parses arguments
// and the environment and hands over to package server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const dotenvPath = config.DotenvPath

func main() {
	// The bot's binary is also the launcher that confines each step.
	runner.MaybeRunSandbox()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "railyard", version)
		return 0
	case "validate":
		return validate(args, stdout, stderr)
	case "jobs":
		return jobs(args, stdout, stderr)
	case "serve":
		return serve(stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bot: unknown command %q\n\n%s", cmd, usage)
	return 2
}

const usage = `Usage:
  bot                  serve (configuration from the environment and .env)
  bot validate [FILE]  check a pipeline file (default .github/railyard.yml)
  bot jobs [list]      list the jobs Railyard gave up on (needs RAILYARD_REDIS_URL)
  bot jobs replay ID   queue one of them again
  bot version          print the version
`

func validate(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "bot validate: at most one file\n")
		return 2
	}
	path := config.PipelinePath
	if len(args) == 1 {
		path = args[0]
	}
	n, err := config.ValidateFile(path, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "bot validate: %v\n", err)
		return 1
	}
	if n > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, n)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func serve(stderr io.Writer) int {
	env, err := config.LoadEnv(os.LookupEnv, dotenvPath)
	if err != nil {
		fmt.Fprintf(stderr, "railyard: configuration problems:\n%v\n", err)
		return 1
	}
	log := newLogger(env, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	server.Version = version
	if err := server.Serve(ctx, env, log, dotenvPath); err != nil && !errors.Is(err, context.Canceled) {
		log.Error().Err(err).Msg("Railyard stopped.")
		return 1
	}
	return 0
}

func newLogger(env config.Env, w io.Writer) zerolog.Logger {
	if env.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w}
	}
	return zerolog.New(w).Level(env.LogLevel).With().Timestamp().Logger()
}
