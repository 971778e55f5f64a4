package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/joho/godotenv"
)

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// dotenvLine matches the start of a KEY=value statement as godotenv reads it.
	dotenvLine = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z0-9_.]+)\s*[=:]\s*(.*)$`)
	// dotenvEscaper escapes what godotenv treats specially inside double quotes.
	dotenvEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, `"`, `\"`, `!`, `\!`, `$`, `\$`, "`", "\\`")
)

// WriteDotenv sets keys in the .env file at path to values, keeping its other
// lines, and creates the file if needed. The file is replaced atomically and
// left with mode 0600, since it holds the App's credentials.
func WriteDotenv(path string, values map[string]string) error {
	lines := make(map[string]string, len(values))
	for k, v := range values {
		line, err := dotenvStatement(k, v)
		if err != nil {
			return err
		}
		lines[k] = line
	}

	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	written := map[string]bool{}
	if len(old) > 0 {
		in := strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
		for i := 0; i < len(in); i++ {
			m := dotenvLine.FindStringSubmatch(in[i])
			if m == nil {
				out = append(out, in[i])
				continue
			}
			// A statement may span lines; keep or replace it whole.
			end := valueEnd(in, i, m[2])
			line, replace := lines[m[1]]
			switch {
			case !replace:
				out = append(out, in[i:end+1]...)
			case !written[m[1]]:
				out = append(out, line)
				written[m[1]] = true
			}
			i = end
		}
	}
	for _, k := range slices.Sorted(maps.Keys(lines)) {
		if !written[k] {
			out = append(out, lines[k])
		}
	}
	return writeFileAtomic(path, []byte(strings.Join(out, "\n")+"\n"))
}

// dotenvStatement encodes KEY="value" and makes sure godotenv reads it back
// unchanged. Errors never quote the value.
func dotenvStatement(key, value string) (string, error) {
	if !envName.MatchString(key) {
		return "", fmt.Errorf("write .env: %q is not a variable name", key)
	}
	line := key + `="` + dotenvEscaper.Replace(value) + `"`
	back, err := godotenv.Unmarshal(line)
	if err != nil || back[key] != value {
		return "", fmt.Errorf("write .env: the value of %s cannot be written to a .env file", key)
	}
	return line, nil
}

// valueEnd returns the index of the last line of the statement starting at
// lines[i], whose value text is rest: later lines belong to it when a quoted
// value spans lines. An unclosed quote ends at its own line, so a broken file
// loses nothing.
func valueEnd(lines []string, i int, rest string) int {
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return i
	}
	q := rest[0]
	if closesQuote(rest[1:], q) {
		return i
	}
	for j := i + 1; j < len(lines); j++ {
		if closesQuote(lines[j], q) {
			return j
		}
	}
	return i
}

// closesQuote reports whether s holds q not escaped by a backslash, which is
// how godotenv finds the end of a quoted value.
func closesQuote(s string, q byte) bool {
	for k := range len(s) {
		if s[k] == q && (k == 0 || s[k-1] != '\\') {
			return true
		}
	}
	return false
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".env-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
