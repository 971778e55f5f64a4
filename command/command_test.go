package command

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRawAndLine(t *testing.T) {
	body := "hi\r\n  /cancel   stage=prod\t \r\n\r\n /nope  x \r\n"
	items := Parse(body)
	if len(items) != 2 || items[0].Command == nil || items[1].Err == nil {
		t.Fatalf("Parse = %+v, want a command and an error", items)
	}
	if c := items[0].Command; c.Line != 2 || c.Raw != "/cancel   stage=prod" {
		t.Errorf("command at line %d raw %q, want line 2 raw %q", c.Line, c.Raw, "/cancel   stage=prod")
	}
	var se *SyntaxError
	if !errors.As(items[1].Err, &se) || se.Line != 4 || se.Raw != "/nope  x" {
		t.Errorf("error = %#v, want a *SyntaxError at line 4 raw %q", items[1].Err, "/nope  x")
	}
	if got, want := items[1].Err.Error(), "line 4: unknown command /nope; /help lists the commands"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Every command Parse returns validates and renders as a line that parses
// back to it.
func TestParsedCommandsValidateAndRoundTrip(t *testing.T) {
	n := 0
	for _, tc := range parseCases {
		for _, it := range Parse(tc.body) {
			if it.Command == nil {
				continue
			}
			n++
			checkCommand(t, *it.Command)
		}
	}
	if n < 40 {
		t.Fatalf("only %d commands checked", n)
	}
}

func checkCommand(t *testing.T, c Command) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(%s) = %v", c.Raw, err)
	}
	line := c.String()
	again := Parse(line)
	if len(again) != 1 || again[0].Command == nil {
		t.Fatalf("Parse(%q) from %q = %+v, want one command", line, c.Raw, again)
	}
	got := *again[0].Command
	got.Line, got.Raw = c.Line, c.Raw
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Parse(%q) = %+v, want %+v", line, got, c)
	}
}

func TestString(t *testing.T) {
	c := Command{Name: NameRollback, Stage: "prod", To: "abc1234", Skip: []string{"a", "b"}, Infra: true, Reason: `a "quoted" C:\x`}
	want := `/rollback stage=prod to=abc1234 skip=a,b infra=true reason="a \"quoted\" C:\\x"`
	if got := c.String(); got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "x"}, ""},
		{Command{Name: NameStatus}, ""},
		{Command{Name: "ship"}, `unknown command "/ship"`},
		{Command{Name: NameDeploy, SHA: "ABC1234"}, "/deploy has values in a form Parse does not return"},
		{Command{Name: "roll-forward", Stage: "prod", To: "abc1234", Reason: "x"}, `unknown command "/roll-forward"`},
		{Command{Name: NameRollback, Stage: "prod", To: "abc1234"}, "/rollback needs reason=…"},
		{Command{Name: NameRetry, Stage: "prod", Reason: "x"}, "/retry does not take reason="},
		{Command{Name: NameCancel, Stage: "prod", Infra: true}, "/cancel does not take infra="},
		{Command{Name: NameStatus, Stage: "prod"}, "/status does not take stage="},
		{Command{Name: NameCancel, Stage: "Prod"}, `/cancel: stage= must be a stage name (lowercase letters, digits and dashes), not "Prod"`},
		{Command{Name: NamePromote, Stage: "prod", To: "$(id)"}, `/promote: to= must be a commit SHA, branch or tag name, not "$(id)"`},
		{Command{Name: NameStop, Reason: "a\nb"}, "/stop: reason= must not contain control characters"},
		{Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "x", Skip: []string{}}, "/rollback: skip= needs a value"},
		{Command{Name: NameRollback, Stage: "prod", To: "abc1234", Reason: "x", Skip: []string{"a,b"}}, "/rollback has values in a form Parse does not return"},
		{Command{Name: NameRedeploy, Stage: "prod", Cache: "USE"}, "/redeploy has values in a form Parse does not return"},
		{Command{Name: NameStop, Reason: " x"}, "/stop has values in a form Parse does not return"},
	} {
		t.Run(tc.cmd.String(), func(t *testing.T) {
			err := tc.cmd.Validate()
			var got string
			if err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Validate() = %T, want *SyntaxError", err)
				}
				got = se.Message
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpecs(t *testing.T) {
	// The commands of docs/reference.md#operations, in its order.
	want := []Name{NameDeploy, NamePromote, NameCancel, NameRetry, NameRollback, NameRollforward, NameUnblock, NameStop,
		NameResume, NamePatch, NameRelease, NameRedeploy, NameRestart, NameShutdown, NameStatus, NameHelp}
	specs := Specs()
	var names []Name
	for _, s := range specs {
		names = append(names, s.Name)
		for _, k := range s.Required {
			if !slices.Contains(s.Keys, k) {
				t.Errorf("/%s requires %s= but does not take it", s.Name, k)
			}
		}
		for _, n := range append([]string{string(s.Name), strings.ToUpper(string(s.Name))}, s.Aliases...) {
			if got, ok := Lookup(n); !ok || got.Name != s.Name {
				t.Errorf("Lookup(%q) = %v, %v, want /%s", n, got.Name, ok, s.Name)
			}
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("Specs() names = %v, want %v", names, want)
	}
	if s, ok := Lookup("rollback"); !ok || s.Usage != "/rollback stage=S to=SHA [skip=a,b] [infra=true] reason=…" {
		t.Errorf("Lookup(rollback) usage = %q", s.Usage)
	}
	if _, ok := Lookup("ship"); ok {
		t.Error(`Lookup("ship") found a command`)
	}

	// Changing the copy changes nothing.
	specs[0].Keys[0] = "reason"
	specs[0].Required = nil
	if got := results(Parse("/promote")); len(got) != 1 || got[0].Err != "/promote needs stage=…; usage: /promote stage=S [to=SHA]" {
		t.Errorf("after changing Specs(), Parse(/promote) = %v", show(got))
	}
}

func TestHelp(t *testing.T) {
	help := Help()
	for _, s := range Specs() {
		for _, want := range []string{"`" + s.Usage + "`", s.Summary} {
			if !strings.Contains(help, want) {
				t.Errorf("Help() lacks %q", want)
			}
		}
		for _, a := range s.Aliases {
			if !strings.Contains(help, "`/"+a+"`") {
				t.Errorf("Help() lacks alias /%s", a)
			}
		}
	}
}

// bigComment is a comment of about size bytes: prose, a fenced block and a
// quote full of commands, and three real commands at known lines.
func bigComment(size int) (string, []result) {
	var b strings.Builder
	var want []result
	line := 0
	add := func(s string) { b.WriteString(s + "\n"); line++ }
	for i := 0; b.Len() < size; i++ {
		switch i % 400 {
		case 0:
			add("```")
			add("/stop reason=inside code")
			add("```")
		case 100:
			add("> /rollback stage=prod to=abc1234 reason=quoted")
		case 200:
			if len(want) < 3 {
				add(fmt.Sprintf("/cancel stage=s%d reason=line %d", i, line+1))
				want = append(want, ok(line, Command{Name: NameCancel, Stage: fmt.Sprintf("s%d", i), Reason: fmt.Sprintf("line %d", line)}))
			}
		default:
			add(fmt.Sprintf("Prose line %d with a /path/to/file and a=b in it.", i))
		}
	}
	return b.String(), want
}

func TestParseLargeComment(t *testing.T) {
	body, want := bigComment(100 << 10)
	start := time.Now()
	got := results(Parse(body))
	// Generous: it takes about a millisecond; the bound only catches
	// something quadratic.
	if d := time.Since(start); d > time.Second {
		t.Errorf("Parse took %v on %d bytes", d, len(body))
	}
	if len(want) != 3 || !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(100 KB) = %s\nwant %s", show(got), show(want))
	}
}

func BenchmarkParse(b *testing.B) {
	typical := "Prod is failing since the last deploy.\n\n" +
		"/rollback stage=prod to=abc1234 reason=\"bad migration\"\n" +
		"/stop reason=until the migration is fixed\n\n" +
		"```\nERROR: relation \"users\" does not exist\n```\n\n> /status\n\ncc @octo/oncall\n"
	big, _ := bigComment(100 << 10)
	for _, bc := range []struct{ name, body string }{{"typical", typical}, {"100KB", big}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(bc.body)
			}
		})
	}
}
