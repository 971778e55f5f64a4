package command

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// result is an Item as a user sees it: which line, and what runs or what is
// replied.
type result struct {
	Line int
	Cmd  Command // without Line and Raw
	Err  string
}

func ok(line int, c Command) result    { return result{Line: line, Cmd: c} }
func fail(line int, msg string) result { return result{Line: line, Err: msg} }

func results(items []Item) []result {
	var out []result
	for _, it := range items {
		if it.Err != nil {
			out = append(out, fail(it.Err.(*SyntaxError).Line, it.Err.(*SyntaxError).Message))
			continue
		}
		c := *it.Command
		line := c.Line
		c.Line, c.Raw = 0, ""
		out = append(out, ok(line, c))
	}
	return out
}

// repeatLines joins n copies of line.
func repeatLines(n int, line string) string {
	return strings.Repeat(line+"\n", n)
}

func statuses(n int) []result {
	var out []result
	for i := range n {
		out = append(out, ok(i+1, Command{Name: NameStatus}))
	}
	return out
}

const (
	rollbackUsage = "/rollback stage=S to=SHA [skip=a,b] [infra=true] reason=…"
	cancelUsage   = "/cancel stage=S [to=SHA] [reason=…]"
)

var parseCases = []struct {
	name string
	body string
	want []result
}{
	// Every command, minimal and full.
	{"deploy", "/deploy sha=abc1234", []result{ok(1, Command{Name: NameDeploy, SHA: "abc1234"})}},
	{"deploy full, sha lowered", "/deploy sha=ABC1234DEF reason=hand start", []result{ok(1, Command{Name: NameDeploy, SHA: "abc1234def", Reason: "hand start"})}},
	{"deploy of a branch name", "/deploy sha=main", []result{fail(1, `/deploy: sha= must be a full or abbreviated commit SHA (4 to 40 hex digits), not "main"`)}},
	{"deploy without sha", "/deploy", []result{fail(1, "/deploy needs sha=…; usage: /deploy sha=SHA [reason=…]")}},
	{"promote", "/promote stage=prod", []result{ok(1, Command{Name: NamePromote, Stage: "prod"})}},
	{"promote to tag", "/promote stage=prod to=v1.2.3", []result{ok(1, Command{Name: NamePromote, Stage: "prod", To: "v1.2.3"})}},
	{"cancel", "/cancel stage=staging", []result{ok(1, Command{Name: NameCancel, Stage: "staging"})}},
	{"cancel with reason", `/cancel stage=staging reason="wrong branch"`, []result{ok(1, Command{Name: NameCancel, Stage: "staging", Reason: "wrong branch"})}},
	{"retry", "/retry stage=build", []result{ok(1, Command{Name: NameRetry, Stage: "build"})}},
	{"rollback as in the README", `/rollback stage=prod to=abc1234 reason="bad migration"`,
		[]result{ok(1, Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "bad migration"})}},
	{"rollback full", `/rollback stage=prod to=1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b skip=migrate,warm-cache infra=true reason="bad migration"`,
		[]result{ok(1, Command{Name: NameRollback, Stage: "prod", To: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", Skip: []string{"migrate", "warm-cache"}, Infra: true, Reason: "bad migration"})}},
	{"rollforward full", "/rollforward stage=prod to=release/2.1 skip=smoke infra=false reason=fix is out",
		[]result{ok(1, Command{Name: NameRollforward, Stage: "prod", To: "release/2.1", Skip: []string{"smoke"}, Reason: "fix is out"})}},
	{"roll-forward alias", "/roll-forward stage=prod to=v2.1.0 reason=fixed",
		[]result{ok(1, Command{Name: NameRollforward, Stage: "prod", To: "v2.1.0", Reason: "fixed"})}},
	{"unblock", "/unblock stage=prod", []result{ok(1, Command{Name: NameUnblock, Stage: "prod"})}},
	{"unblock with reason", "/unblock stage=prod reason=verified by hand", []result{ok(1, Command{Name: NameUnblock, Stage: "prod", Reason: "verified by hand"})}},
	{"stop", "/stop reason=incident 4711", []result{ok(1, Command{Name: NameStop, Reason: "incident 4711"})}},
	{"resume", "/resume", []result{ok(1, Command{Name: NameResume})}},
	{"resume with reason", `/resume reason="incident over"`, []result{ok(1, Command{Name: NameResume, Reason: "incident over"})}},
	{"patch", "/patch stage=prod reason=hotfix", []result{ok(1, Command{Name: NamePatch, Stage: "prod", Reason: "hotfix"})}},
	{"patch with to", "/patch stage=prod to=hotfix/login reason=hotfix for login", []result{ok(1, Command{Name: NamePatch, Stage: "prod", To: "hotfix/login", Reason: "hotfix for login"})}},
	{"release", "/release", []result{ok(1, Command{Name: NameRelease})}},
	{"release with reason", "/release reason=patched upstream", []result{ok(1, Command{Name: NameRelease, Reason: "patched upstream"})}},
	{"redeploy", "/redeploy stage=staging", []result{ok(1, Command{Name: NameRedeploy, Stage: "staging"})}},
	{"redeploy full", "/redeploy stage=staging cache=skip reason=stale assets", []result{ok(1, Command{Name: NameRedeploy, Stage: "staging", Cache: "skip", Reason: "stale assets"})}},
	{"redeploy cache keyword ignores case", "/redeploy stage=staging cache=USE", []result{ok(1, Command{Name: NameRedeploy, Stage: "staging", Cache: "use"})}},
	{"restart", "/restart stage=prod", []result{ok(1, Command{Name: NameRestart, Stage: "prod"})}},
	{"restart with reason", "/restart stage=prod reason=memory leak", []result{ok(1, Command{Name: NameRestart, Stage: "prod", Reason: "memory leak"})}},
	{"shutdown", `/shutdown stage=preview-42 reason="PR closed"`, []result{ok(1, Command{Name: NameShutdown, Stage: "preview-42", Reason: "PR closed"})}},
	{"status", "/status", []result{ok(1, Command{Name: NameStatus})}},
	{"help", "/help", []result{ok(1, Command{Name: NameHelp})}},

	// Syntax of arguments.
	{"quoted reason with escapes", `/stop reason="said \"no\" in C:\\temp and C:\tmp"`, []result{ok(1, Command{Name: NameStop, Reason: `said "no" in C:\temp and C:\tmp`})}},
	{"unquoted reason takes the rest of the line", "/cancel stage=prod reason=bad migration on db", []result{ok(1, Command{Name: NameCancel, Stage: "prod", Reason: "bad migration on db"})}},
	{"unquoted reason trimmed, inner tab kept", "/stop reason=  db\tdown  \t", []result{ok(1, Command{Name: NameStop, Reason: "db\tdown"})}},
	{"unquoted reason keeps quotes and key=value text", `/stop reason=see "x" a=b`, []result{ok(1, Command{Name: NameStop, Reason: `see "x" a=b`})}},
	{"quoted reason first", `/rollback reason="bad one" stage=prod to=abc1234`, []result{ok(1, Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "bad one"})}},
	{"unquoted reason first swallows the keys", "/rollback reason=oops stage=prod to=abc1234",
		[]result{fail(1, "/rollback needs stage=… and to=…; an unquoted reason= takes the rest of the line, so give it last or quote it")}},
	{"quoted stage", `/cancel stage="prod"`, []result{ok(1, Command{Name: NameCancel, Stage: "prod"})}},
	{"keys ignore case", `/cancel Stage=prod REASON="x"`, []result{ok(1, Command{Name: NameCancel, Stage: "prod", Reason: "x"})}},
	{"uppercase command", "/CANCEL STAGE=prod", []result{ok(1, Command{Name: NameCancel, Stage: "prod"})}},
	{"non-breaking space separates", "/cancel\u00a0stage=prod\u00a0reason=x", []result{ok(1, Command{Name: NameCancel, Stage: "prod", Reason: "x"})}},
	{"extra blanks", "  /cancel   stage=prod\t ", []result{ok(1, Command{Name: NameCancel, Stage: "prod"})}},
	{"skip list with spaces in quotes", `/rollback stage=prod to=abc1234 skip="a, b" reason=x`, []result{ok(1, Command{Name: NameRollback, Stage: "prod", To: "abc1234", Skip: []string{"a", "b"}, Reason: "x"})}},
	{"infra keyword ignores case", "/rollback stage=prod to=abc1234 infra=TRUE reason=x", []result{ok(1, Command{Name: NameRollback, Stage: "prod", To: "abc1234", Infra: true, Reason: "x"})}},
	{"reason of 500 characters", "/stop reason=" + strings.Repeat("é", 500), []result{ok(1, Command{Name: NameStop, Reason: strings.Repeat("é", 500)})}},

	// Refusals.
	{"reason of 501 characters", "/stop reason=" + strings.Repeat("x", 501), []result{fail(1, "/stop: reason= must be at most 500 characters")}},
	{"reason with NUL", "/stop reason=a\x00b", []result{fail(1, "/stop: reason= must not contain control characters")}},
	{"reason with terminal escape", "/stop reason=\x1b[31mred", []result{fail(1, "/stop: reason= must not contain control characters")}},
	{"reason with carriage return inside", "/stop reason=a\rb", []result{fail(1, "/stop: reason= must not contain control characters")}},
	{"reason not UTF-8", "/stop reason=a\xffb", []result{fail(1, "/stop: reason= must be valid UTF-8 text")}},
	{"reason of blanks", `/stop reason="   "`, []result{fail(1, "/stop: reason= needs a value")}},
	{"empty quoted reason", `/stop reason=""`, []result{fail(1, "/stop: reason= needs a value")}},
	{"empty unquoted reason", "/stop reason=", []result{fail(1, "/stop: reason= needs a value")}},
	{"empty stage", "/cancel stage= reason=x", []result{fail(1, "/cancel: stage= needs a value")}},
	{"unterminated quote", `/stop reason="bad migration`, []result{fail(1, "/stop: the value of reason= has no closing quote")}},
	{"escaped closing quote is no closing quote", `/stop reason="bad\"`, []result{fail(1, "/stop: the value of reason= has no closing quote")}},
	{"text glued to a quoted value", `/cancel reason="a"b stage=prod`, []result{fail(1, "/cancel: put a space after the quoted value of reason=")}},
	{"bare word", "/cancel prod", []result{fail(1, `/cancel: unexpected "prod"; arguments are key=value; usage: `+cancelUsage)}},
	{"no key", "/cancel =prod", []result{fail(1, `/cancel: "=prod" has no key before the =`)}},
	{"unknown key", "/cancel stage=prod force=true", []result{fail(1, `/cancel: unknown key "force"; usage: `+cancelUsage)}},
	{"key of another command", "/retry stage=prod reason=flaky", []result{fail(1, "/retry does not take reason=; usage: /retry stage=S")}},
	{"duplicate key", "/cancel stage=prod stage=staging", []result{fail(1, "/cancel: stage= is given twice")}},
	{"duplicate key in other case", "/cancel stage=prod STAGE=prod", []result{fail(1, "/cancel: stage= is given twice")}},
	{"rollback without reason", "/rollback stage=prod to=abc1234", []result{fail(1, "/rollback needs reason=…; usage: "+rollbackUsage)}},
	{"rollback without anything", "/rollback", []result{fail(1, "/rollback needs stage=…, to=… and reason=…; usage: "+rollbackUsage)}},
	{"shutdown without arguments", "/shutdown", []result{fail(1, "/shutdown needs stage=… and reason=…; usage: /shutdown stage=S reason=…")}},
	{"stop without reason", "/stop", []result{fail(1, "/stop needs reason=…; usage: /stop reason=…")}},
	{"alias named as written", "/roll-forward stage=prod reason=x", []result{fail(1, "/roll-forward needs to=…; usage: /rollforward stage=S to=SHA [skip=a,b] [infra=true] reason=…")}},
	{"status with arguments", "/status stage=prod", []result{fail(1, "/status takes no arguments")}},
	{"help with a word", "/help me", []result{fail(1, "/help takes no arguments")}},
	{"unknown command", "/foo", []result{fail(1, "unknown command /foo; /help lists the commands")}},
	{"long unknown command cut short", "/" + strings.Repeat("x", 50), []result{fail(1, "unknown command /"+strings.Repeat("x", 40)+"…; /help lists the commands")}},
	{"unknown command with arguments", "/Ship stage=prod", []result{fail(1, "unknown command /ship; /help lists the commands")}},
	{"uppercase stage", "/cancel stage=Prod", []result{fail(1, `/cancel: stage= must be a stage name (lowercase letters, digits and dashes), not "Prod"`)}},
	{"stage path", "/cancel stage=../x", []result{fail(1, `/cancel: stage= must be a stage name (lowercase letters, digits and dashes), not "../x"`)}},
	{"stage starting with a dash", "/cancel stage=-rf", []result{fail(1, `/cancel: stage= must be a stage name (lowercase letters, digits and dashes), not "-rf"`)}},
	{"stage of 64 characters", "/cancel stage=" + strings.Repeat("a", 64), []result{fail(1, `/cancel: stage= must be a stage name (lowercase letters, digits and dashes), not "`+strings.Repeat("a", 40)+`…"`)}},
	{"stage of 63 characters", "/cancel stage=" + strings.Repeat("a", 63), []result{ok(1, Command{Name: NameCancel, Stage: strings.Repeat("a", 63)})}},
	{"to command substitution", "/rollback stage=prod to=$(rm -rf /) reason=x", []result{fail(1, `/rollback: to= must be a commit SHA, branch or tag name, not "$(rm"`)}},
	{"to quoted command substitution", `/rollback stage=prod to="$(rm -rf /)" reason=x`, []result{fail(1, `/rollback: to= must be a commit SHA, branch or tag name, not "$(rm -rf /)"`)}},
	{"to backticks", "/promote stage=prod to=`id`", []result{fail(1, "/promote: to= must be a commit SHA, branch or tag name, not \"`id`\"")}},
	{"to semicolon", "/promote stage=prod to=main;rm", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "main;rm"`)}},
	{"to range", "/promote stage=prod to=main..dev", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "main..dev"`)}},
	{"to reflog", "/promote stage=prod to=main@{1}", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "main@{1}"`)}},
	{"to double slash", "/promote stage=prod to=a//b", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "a//b"`)}},
	{"to lock file", "/promote stage=prod to=main.lock", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "main.lock"`)}},
	{"to trailing slash", "/promote stage=prod to=feature/", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "feature/"`)}},
	{"to hidden part", "/promote stage=prod to=feature/.x", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "feature/.x"`)}},
	{"to hidden component", "/promote stage=prod to=feature/.x", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "feature/.x"`)}},
	{"to option", "/promote stage=prod to=--upload-pack=x", []result{fail(1, `/promote: to= must be a commit SHA, branch or tag name, not "--upload-pack=x"`)}},
	{"skip with empty name", "/rollback stage=prod to=abc1234 skip=a,,b reason=x", []result{fail(1, `/rollback: skip= must be step names separated by commas, not "a,,b"`)}},
	{"skip twice the same", "/rollback stage=prod to=abc1234 skip=a,a reason=x", []result{fail(1, "/rollback: skip= lists a twice")}},
	{"infra not a boolean", "/rollback stage=prod to=abc1234 infra=yes reason=x", []result{fail(1, `/rollback: infra= must be true or false, not "yes"`)}},
	{"cache not a keyword", "/redeploy stage=prod cache=maybe", []result{fail(1, `/redeploy: cache= must be use or skip, not "maybe"`)}},

	// What is not a command.
	{"empty comment", "", nil},
	{"prose only", "LGTM, ship it.\n\nThanks!", nil},
	{"paths and other slashes", "/path/to/file\n//comment\n/ cancel\n/v1.2\n/cancel.\n/ok!\nsee /cancel stage=prod\n- /cancel stage=prod\n/", nil},
	{"quoted reply at any depth", "> /stop reason=x\n>> /stop reason=x\n> > /stop reason=x\n   > /stop reason=x\n>/stop reason=x", nil},
	{"fenced code", "```\n/stop reason=x\n```\n/status", []result{ok(4, Command{Name: NameStatus})}},
	{"tilde fence with info string", "~~~sh\n/stop reason=x\n~~~\n/status", []result{ok(4, Command{Name: NameStatus})}},
	{"fence closes only with as long a fence", "````\n```\n/stop reason=x\n````\n/status", []result{ok(5, Command{Name: NameStatus})}},
	{"fence closes only with its own character", "```\n~~~\n/stop reason=x\n```\n/status", []result{ok(5, Command{Name: NameStatus})}},
	{"unclosed fence hides the rest", "```\n/stop reason=x\n/status", nil},
	{"inline code is no fence", "```x``` is code\n/status", []result{ok(2, Command{Name: NameStatus})}},
	{"indented code", "    /stop reason=x\n\t/stop reason=x\n  \t/stop reason=x", nil},
	{"indented up to three spaces", "   /status", []result{ok(1, Command{Name: NameStatus})}},
	{"html comment", "<!--\n/stop reason=x\n-->\n<!-- /stop -->\n/status", []result{ok(5, Command{Name: NameStatus})}},

	// Whole comments.
	{"commands between prose", "Prod is on fire.\n\n/stop reason=incident\n\nThen:\n/rollback stage=prod to=abc1234 reason=\"bad migration\"\n/rollbak stage=prod\nthanks",
		[]result{
			ok(3, Command{Name: NameStop, Reason: "incident"}),
			ok(6, Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "bad migration"}),
			fail(7, "unknown command /rollbak; /help lists the commands"),
		}},
	{"CRLF line endings", "Please:\r\n/cancel stage=prod reason=wrong one\r\n```\r\n/stop reason=x\r\n```\r\n/status\r\n",
		[]result{ok(2, Command{Name: NameCancel, Stage: "prod", Reason: "wrong one"}), ok(6, Command{Name: NameStatus})}},
	{"ten commands", repeatLines(10, "/status"), statuses(10)},
	{"eleven commands", repeatLines(11, "/status"),
		append(statuses(10), fail(11, "/status and the commands after it were not run: a comment runs at most 10 commands"))},
	{"errors count as commands", repeatLines(10, "/status") + "text\n/foo\n/status",
		append(statuses(10), fail(12, "/foo and the commands after it were not run: a comment runs at most 10 commands"))},
	{"only commands count", repeatLines(10, "/status") + "/path/to\n> /stop\n", statuses(10)},
}

func TestParse(t *testing.T) {
	if len(parseCases) < 60 {
		t.Fatalf("only %d cases", len(parseCases))
	}
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got := results(Parse(tc.body))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tc.body, show(got), show(tc.want))
			}
		})
	}
}

func show(rs []result) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %+v", r)
	}
	return b.String()
}

// TestSyntaxErrorName: a line that cannot run still says which command it
// meant, by canonical name, and nothing for a word that names none.
func TestSyntaxErrorName(t *testing.T) {
	cases := []struct {
		body string
		want Name
	}{
		{"/rollback stage=prod", NameRollback},
		{"/Roll-Forward stage=prod", NameRollforward},
		{"/help me", NameHelp},
		{"/frobnicate stage=prod", ""},
		{repeatLines(MaxCommands, "/status") + "/cancel stage=prod", NameCancel},
	}
	for _, c := range cases {
		items := Parse(c.body)
		last := items[len(items)-1]
		se, ok := last.Err.(*SyntaxError)
		if !ok {
			t.Errorf("Parse(%q): last item %+v, want a syntax error", c.body, last)
			continue
		}
		if se.Name != c.want {
			t.Errorf("Parse(%q): syntax error names %q, want %q", c.body, se.Name, c.want)
		}
	}
}
