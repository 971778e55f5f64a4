// Command faults runs the fault suite of issue #14 (the TestFault* tests
// of package server, and the kill -9 and network partition tests they
// build on) against real bot processes, a redis-server each test starts,
// and the fake GitHub, in their long variants (Redis down 2 minutes,
// GitHub answering 502 for 10 minutes), and prints a table of figures per
// case. Each test fails on anything doubled, lost or dead-lettered; the
// table shows what it counted.
//
//	go run ./bench/faults            # long variants, about 20 minutes; from the repository root
//	go run ./bench/faults -short     # the shortened variants CI runs
//
// It needs the go command and redis-server on PATH, and a Redis at
// -redis for the tests that mark themselves real-Redis (they use their own
// redis-server; the URL only switches them on).
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
)

// tests are the suite's tests; the last two predate it and log their
// figures in their own words.
const tests = `^(TestFault.*|TestKilledProcessJobIsTakenOver|TestCutOffProcessNeverRunsAStageBesideItsSuccessor)$`

var (
	figureLine = regexp.MustCompile(`fault figures: (.*)$`)
	field      = regexp.MustCompile(`(\w+)=(\S+)`)
	// The older tests' lines, as TestKilledProcessJobIsTakenOver and
	// TestCutOffProcessNeverRunsAStageBesideItsSuccessor write them.
	killLine = regexp.MustCompile(`took (\S+) from SIGKILL to staging succeeded`)
	cutLine  = regexp.MustCompile(`B's ran from \S+ to (\S+) after the cut; runs at once for (\S+)`)
	result   = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)
	// go test -v names the test whose output follows, parallel ones too.
	running = regexp.MustCompile(`^=== (?:RUN|CONT|NAME)\s+(\S+)`)
)

func main() {
	short := flag.Bool("short", false, "run the shortened variants (Redis down 25 s, GitHub down 20 s)")
	redisURL := flag.String("redis", cmp.Or(os.Getenv("RAILYARD_TEST_REDIS_URL"), "redis://127.0.0.1:6379/15"),
		"RAILYARD_TEST_REDIS_URL for the tests (the fault tests only need it set)")
	run := flag.String("run", tests, "go test -run pattern")
	verbose := flag.Bool("v", false, "copy the tests' output to stderr")
	from := flag.String("from", "", "tabulate this saved output of go test -v instead of running the tests")
	flag.Parse()

	if *from != "" {
		in, err := os.Open(*from)
		if err != nil {
			fail(err)
		}
		defer in.Close()
		table(read(in, *verbose))
		return
	}

	// The cases mostly wait (on the fault, on leases): all at once.
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout", "60m", "-parallel", "8", "-run", *run, "./server")
	cmd.Env = append(os.Environ(), "RAILYARD_TEST_REDIS_URL="+*redisURL)
	if !*short {
		cmd.Env = append(cmd.Env, "RAILYARD_FAULTS_LONG=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	table(read(out, *verbose))
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: go test:", err)
		os.Exit(1)
	}
}

// table prints one row per case.
func table(rows []map[string]string, results map[string]string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CASE\tRESULT\tRECOVER\tALL FINAL\tDOUBLED\tLOST\tDEAD\tRERUNS\tOTHER")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r["case"], results[r["test"]],
			or(r["recover"]), or(r["final"]), or(r["doubled"]), or(r["lost"]), or(r["dead"]), or(r["reruns"]), other(r))
	}
	w.Flush()
}

// read collects one row of figures per line that has them, and each
// test's result.
func read(r io.Reader, verbose bool) (rows []map[string]string, results map[string]string) {
	results = map[string]string{}
	test := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if verbose {
			fmt.Fprintln(os.Stderr, line)
		}
		if m := running.FindStringSubmatch(line); m != nil {
			test = m[1]
		}
		if m := result.FindStringSubmatch(line); m != nil {
			results[m[2]] = m[1]
		}
		row := map[string]string{"test": test}
		switch {
		case figureLine.MatchString(line):
			for _, kv := range field.FindAllStringSubmatch(figureLine.FindStringSubmatch(line)[1], -1) {
				row[kv[1]] = kv[2]
			}
		case killLine.MatchString(line):
			// Two processes: the survivor's takeover; no redelivery.
			row["case"], row["final"] = "kill-9-mid-step", killLine.FindStringSubmatch(line)[1]
		case cutLine.MatchString(line):
			m := cutLine.FindStringSubmatch(line)
			row["case"], row["final"], row["at_once"] = "partition-one-bot", m[1], m[2]
		default:
			continue
		}
		rows = append(rows, row)
	}
	return rows, results
}

// columns are the figures with a column of their own.
var columns = []string{"test", "case", "recover", "final", "doubled", "lost", "dead", "reruns"}

// other lists a row's remaining figures, and its test.
func other(r map[string]string) string {
	var out []string
	for k, v := range r {
		if !slices.Contains(columns, k) {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return strings.Join(append(out, "("+r["test"]+")"), " ")
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "faults:", err)
	os.Exit(1)
}
