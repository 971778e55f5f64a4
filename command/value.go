package command

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/railyard/railyard/internal/gitref"
)

// Values are data that later reach the GitHub API and step environments;
// they are never spliced into shell, but their syntax is still kept narrow
// so that nothing shaped like a path, a ref expression or shell gets in.
var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	// The character set already excludes git's "@{", spaces, "~^:?*[\".
	refPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$`)
	shaPattern = regexp.MustCompile(`^[0-9A-Fa-f]{4,40}$`)
)

// MaxReason is the longest reason= accepted, in characters.
const MaxReason = 500

// set checks the syntax of one value and stores it in c.
func (c *Command) set(key, v string) error {
	if key == keyReason {
		v = strings.TrimSpace(v)
	}
	if v == "" {
		return fmt.Errorf("%s= needs a value", key)
	}
	switch key {
	case keyStage:
		if !namePattern.MatchString(v) {
			return fmt.Errorf("stage= must be a stage name (lowercase letters, digits and dashes), not %s", quoteShort(v))
		}
		c.Stage = v
	case keyTo:
		if !validRef(v) {
			return fmt.Errorf("to= must be a commit SHA, branch or tag name, not %s", quoteShort(v))
		}
		c.To = v
	case keySHA:
		if !shaPattern.MatchString(v) {
			return fmt.Errorf("sha= must be a full or abbreviated commit SHA (4 to 40 hex digits), not %s", quoteShort(v))
		}
		c.SHA = strings.ToLower(v)
	case keySkip:
		steps := strings.Split(v, ",")
		for i, s := range steps {
			steps[i] = strings.TrimSpace(s)
			if !namePattern.MatchString(steps[i]) {
				return fmt.Errorf("skip= must be step names separated by commas, not %s", quoteShort(v))
			}
			if slices.Contains(steps[:i], steps[i]) {
				return fmt.Errorf("skip= lists %s twice", steps[i])
			}
		}
		c.Skip = steps
	case keyInfra:
		switch strings.ToLower(v) {
		case "true":
			c.Infra = true
		case "false":
			c.Infra = false
		default:
			return fmt.Errorf("infra= must be true or false, not %s", quoteShort(v))
		}
	case keyCache:
		v = strings.ToLower(v)
		if v != "use" && v != "skip" {
			return fmt.Errorf("cache= must be use or skip, not %s", quoteShort(v))
		}
		c.Cache = v
	case keyReason:
		if err := checkReason(v); err != nil {
			return err
		}
		c.Reason = v
	default:
		return fmt.Errorf("unknown key %s", quoteShort(key))
	}
	return nil
}

// validRef accepts a branch or tag name git would take, or a SHA, written
// in the plain characters refPattern allows.
func validRef(v string) bool {
	return refPattern.MatchString(v) && gitref.Valid(v)
}

func checkReason(v string) error {
	switch {
	case !utf8.ValidString(v):
		return errors.New("reason= must be valid UTF-8 text")
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }):
		return errors.New("reason= must not contain control characters")
	case utf8.RuneCountInString(v) > MaxReason:
		return fmt.Errorf("reason= must be at most %d characters", MaxReason)
	}
	return nil
}

// value returns the text form of one key of c and whether it is set.
func (c Command) value(key string) (string, bool) {
	switch key {
	case keyStage:
		return c.Stage, c.Stage != ""
	case keyTo:
		return c.To, c.To != ""
	case keySHA:
		return c.SHA, c.SHA != ""
	case keySkip:
		return strings.Join(c.Skip, ","), c.Skip != nil
	case keyInfra:
		return "true", c.Infra
	case keyCache:
		return c.Cache, c.Cache != ""
	case keyReason:
		return c.Reason, c.Reason != ""
	}
	return "", false
}

// Validate reports whether c is a command Parse could return: a canonical
// name, only the keys that command takes, its required ones set, and every
// value in valid, normalised syntax. Use it for commands not built by Parse
// (check run buttons) and in tests.
func (c Command) Validate() error {
	fail := func(format string, args ...any) error {
		return &SyntaxError{Line: c.Line, Raw: c.Raw, Message: fmt.Sprintf(format, args...)}
	}
	i, ok := byName[string(c.Name)]
	if !ok || specs[i].Name != c.Name {
		return fail("unknown command %s", quoteShort("/"+string(c.Name)))
	}
	spec := specs[i]
	want := Command{Name: c.Name, Line: c.Line, Raw: c.Raw}
	for _, k := range allKeys {
		v, set := c.value(k)
		switch {
		case !set && slices.Contains(spec.Required, k):
			return fail("/%s needs %s=…", c.Name, k)
		case !set:
		case !slices.Contains(spec.Keys, k):
			return fail("/%s does not take %s=", c.Name, k)
		default:
			if err := want.set(k, v); err != nil {
				return fail("/%s: %v", c.Name, err)
			}
		}
	}
	// Values that pass only after normalising (" x", "USE", "a,b" as one
	// step) are not what Parse returns.
	if !reflect.DeepEqual(want, c) {
		return fail("/%s has values in a form Parse does not return", c.Name)
	}
	return nil
}

var reasonEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// String renders c as one command line that parses back to c.
func (c Command) String() string {
	keys := allKeys
	if i, ok := byName[string(c.Name)]; ok {
		keys = specs[i].Keys
	}
	var b strings.Builder
	b.WriteString("/" + string(c.Name))
	for _, k := range keys {
		v, ok := c.value(k)
		if !ok {
			continue
		}
		if k == keyReason {
			v = `"` + reasonEscaper.Replace(v) + `"`
		}
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

// quoteShort quotes user text for a message, cut short to keep replies small.
func quoteShort(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return strconv.Quote(s)
}
