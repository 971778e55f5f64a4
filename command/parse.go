package command

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Command is one parsed slash command. Its values have valid syntax but are
// unresolved: Stage and Skip may name nothing in the pipeline file and To
// may not resolve to a commit.
type Command struct {
	Name   Name
	Stage  string   // stage=
	To     string   // to=: a full or abbreviated SHA, branch or tag name
	SHA    string   // sha=: a full or abbreviated SHA (deploy)
	Reason string   // reason=
	Skip   []string // skip=a,b
	Infra  bool     // infra=true
	Cache  string   // cache=: "use", "skip" or "" (redeploy)
	Line   int      // 1-based line in the comment
	Raw    string   // the command line as written, trimmed
}

// Item is one command line of a comment: exactly one of Command and Err is set.
type Item struct {
	Command *Command
	Err     error // a *SyntaxError
}

// SyntaxError is a command line that cannot run. Message is a short sentence
// for the reply to the comment.
type SyntaxError struct {
	Line    int
	Raw     string
	Message string
	Name    Name // the command the line names, if it names one; "" for an unknown command
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// Parse returns the command lines of a comment in order, each either a
// Command or a *SyntaxError, and nothing for a comment without commands.
// At most MaxCommands items are returned; if the comment holds more command
// lines, one more Item, an error saying only the first ones run, ends the list.
func Parse(body string) []Item {
	var (
		items []Item
		md    markdown
		n     int
	)
	for line := range strings.Lines(body) {
		n++
		text, ok := md.commandLine(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
		if !ok {
			continue
		}
		word, args, ok := splitCommand(text)
		if !ok {
			continue
		}
		if len(items) == MaxCommands {
			msg := fmt.Sprintf("%s and the commands after it were not run: a comment runs at most %d commands", label(word), MaxCommands)
			return append(items, Item{Err: &SyntaxError{Line: n, Raw: text, Message: msg, Name: nameOf(word)}})
		}
		c, err := parseLine(word, args)
		if err != nil {
			items = append(items, Item{Err: &SyntaxError{Line: n, Raw: text, Message: err.Error(), Name: nameOf(word)}})
			continue
		}
		c.Line, c.Raw = n, text
		items = append(items, Item{Command: c})
	}
	return items
}

// markdown follows the block structure that keeps a line from being a
// command: fenced code, indented code, HTML comments and quoted replies
// (quoting someone's "/stop" must not stop anything).
type markdown struct {
	fence    byte // '`' or '~' inside a fenced code block, else 0
	fenceLen int
	comment  bool // inside a multi-line HTML comment
}

// commandLine returns line trimmed if it may be a command.
func (m *markdown) commandLine(line string) (string, bool) {
	indent, text := indentation(line)
	switch {
	case m.fence != 0:
		if ch, n := fenceRun(text); indent < 4 && ch == m.fence && n >= m.fenceLen && strings.Trim(text[n:], " \t") == "" {
			m.fence = 0
		}
		return "", false
	case m.comment:
		m.comment = !strings.Contains(line, "-->")
		return "", false
	case indent >= 4:
		return "", false
	}
	// A backtick fence's info string holds no backtick; "```x```" is inline code.
	if ch, n := fenceRun(text); n >= 3 && (ch == '~' || !strings.Contains(text[n:], "`")) {
		m.fence, m.fenceLen = ch, n
		return "", false
	}
	if rest, ok := strings.CutPrefix(text, "<!--"); ok {
		m.comment = !strings.Contains(rest, "-->")
		return "", false
	}
	if strings.HasPrefix(text, ">") {
		return "", false
	}
	return strings.TrimRightFunc(text, unicode.IsSpace), true
}

// indentation returns the columns of leading blanks (tabs stop every 4, as
// in CommonMark) and the text after them.
func indentation(line string) (int, string) {
	cols := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ':
			cols++
		case '\t':
			cols += 4 - cols%4
		default:
			return cols, line[i:]
		}
	}
	return cols, ""
}

// fenceRun returns the fence character s starts with and how often it repeats.
func fenceRun(s string) (byte, int) {
	if s == "" || (s[0] != '`' && s[0] != '~') {
		return 0, 0
	}
	return s[0], len(s) - len(strings.TrimLeft(s, s[:1]))
}

// splitCommand splits "/word args". Lines shaped otherwise ("/path/to/x",
// "//", "/ x", "/v1.2") are prose, not commands.
func splitCommand(text string) (word, args string, ok bool) {
	rest, ok := strings.CutPrefix(text, "/")
	if !ok || rest == "" || !isLetter(rest[0]) {
		return "", "", false
	}
	i := 1
	for i < len(rest) && (isLetter(rest[i]) || rest[i] == '-') {
		i++
	}
	if r, _ := utf8.DecodeRuneInString(rest[i:]); i < len(rest) && !unicode.IsSpace(r) {
		return "", "", false
	}
	return rest[:i], rest[i:], true
}

func isLetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

// label names a command in messages as the user wrote it, kept short.
func label(word string) string {
	const max = 40
	word = strings.ToLower(word)
	if len(word) > max {
		word = word[:max] + "…"
	}
	return "/" + word
}

// nameOf is the canonical name of the command word names, or "".
func nameOf(word string) Name {
	if i, ok := byName[strings.ToLower(word)]; ok {
		return specs[i].Name
	}
	return ""
}

// parseLine parses the arguments of one command line.
func parseLine(word, args string) (*Command, error) {
	cmd := label(word)
	i, ok := byName[strings.ToLower(word)]
	if !ok {
		return nil, fmt.Errorf("unknown command %s; /help lists the commands", cmd)
	}
	spec := specs[i]
	c := &Command{Name: spec.Name}
	var given []string
	reasonRest := false // reason= took the rest of the line unquoted
	for s := trimLeft(args); s != ""; s = trimLeft(s) {
		if len(spec.Keys) == 0 {
			return nil, fmt.Errorf("%s takes no arguments", cmd)
		}
		eq := strings.IndexFunc(s, func(r rune) bool { return r == '=' || unicode.IsSpace(r) })
		if eq < 0 || s[eq] != '=' {
			return nil, fmt.Errorf("%s: unexpected %s; arguments are key=value; usage: %s", cmd, quoteShort(s[:tokenEnd(s)]), spec.Usage)
		}
		if eq == 0 {
			return nil, fmt.Errorf("%s: %s has no key before the =", cmd, quoteShort(s[:tokenEnd(s)]))
		}
		key := strings.ToLower(s[:eq])
		switch {
		case slices.Contains(spec.Keys, key):
		case slices.Contains(allKeys, key):
			return nil, fmt.Errorf("%s does not take %s=; usage: %s", cmd, key, spec.Usage)
		default:
			return nil, fmt.Errorf("%s: unknown key %s; usage: %s", cmd, quoteShort(s[:eq]), spec.Usage)
		}
		if slices.Contains(given, key) {
			return nil, fmt.Errorf("%s: %s= is given twice", cmd, key)
		}
		given = append(given, key)

		var v string
		s = s[eq+1:]
		switch {
		case strings.HasPrefix(s, `"`):
			if v, s, ok = unquote(s); !ok {
				return nil, fmt.Errorf("%s: the value of %s= has no closing quote", cmd, key)
			}
			if s != "" && trimLeft(s) == s {
				return nil, fmt.Errorf("%s: put a space after the quoted value of %s=", cmd, key)
			}
		case key == keyReason:
			v, s, reasonRest = s, "", true
		default:
			end := tokenEnd(s)
			v, s = s[:end], s[end:]
		}
		if err := c.set(key, v); err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
	}

	var missing []string
	for _, k := range spec.Required {
		if !slices.Contains(given, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return c, nil
	}
	msg := cmd + " needs " + joinAnd(missing)
	swallowed := func(k string) bool { return strings.Contains(strings.ToLower(c.Reason), k+"=") }
	if reasonRest && slices.ContainsFunc(missing, swallowed) {
		return nil, fmt.Errorf("%s; an unquoted reason= takes the rest of the line, so give it last or quote it", msg)
	}
	return nil, fmt.Errorf("%s; usage: %s", msg, spec.Usage)
}

func trimLeft(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) }

// tokenEnd is where the word that s starts with ends.
func tokenEnd(s string) int {
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return i
	}
	return len(s)
}

// unquote reads the double-quoted value s starts with. \" and \\ are
// escapes; any other backslash is kept as written (C:\temp).
func unquote(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				i++
			}
		}
		b.WriteByte(s[i])
	}
	return "", "", false
}

// joinAnd lists keys as "a=…, b=… and c=…".
func joinAnd(keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=…"
	}
	if len(out) == 1 {
		return out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1]
}
