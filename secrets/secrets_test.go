package secrets

import (
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const value = "s3cr3t/value+with=odd&chars ok"

// write puts content at the secrets file of acme/app stage prod under dir.
func write(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	p := Path(dir, "acme", "app", "prod")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "TOKEN=\""+value+"\"\nOTHER=x\nexport REGION=eu\n", 0o600)
	got, err := Load(dir, "acme", "app", "prod", []string{"TOKEN", "REGION"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"TOKEN": value, "REGION": "eu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %q, want %q", got, want)
	}

	// Read afresh: a rotated value is there at the next call.
	write(t, dir, "TOKEN=rotated\nREGION=eu\n", 0o440)
	if got, err := Load(dir, "acme", "app", "prod", []string{"TOKEN"}); err != nil || got["TOKEN"] != "rotated" {
		t.Errorf("after rotation Load = %q, %v", got, err)
	}

	// Kubernetes mounts a Secret's keys as symbolic links into ..data.
	k8s := t.TempDir()
	data := filepath.Join(k8s, "acme", "app", "..data")
	os.MkdirAll(data, 0o700)
	os.WriteFile(filepath.Join(data, "prod.env"), []byte("TOKEN=linked\n"), 0o400)
	if err := os.Symlink("..data/prod.env", Path(k8s, "acme", "app", "prod")); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(k8s, "acme", "app", "prod", []string{"TOKEN"}); err != nil || got["TOKEN"] != "linked" {
		t.Errorf("through a symbolic link Load = %q, %v", got, err)
	}

	if got, err := Load("", "acme", "app", "prod", nil); err != nil || len(got) != 0 {
		t.Errorf("no names: Load = %q, %v; want nothing and no error, even without a directory", got, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, c := range []struct {
		name    string
		setup   func(t *testing.T, dir string)
		dir     string // overrides the temporary directory when "-"
		names   []string
		missing []string
		why     string
	}{
		{"no directory configured", nil, "-", []string{"A", "B"}, []string{"A", "B"}, "RAILYARD_SECRETS_DIR is not set"},
		{"no file", nil, "", []string{"A"}, []string{"A"}, "there is no file acme/app/prod.env"},
		{"a key is absent", func(t *testing.T, d string) { write(t, d, "A="+value+"\n", 0o600) }, "", []string{"A", "B", "C"}, []string{"B", "C"}, "not in acme/app/prod.env"},
		{"world-readable", func(t *testing.T, d string) { write(t, d, "A="+value+"\n", 0o644) }, "", []string{"A"}, []string{"A"}, "is open to other users (mode 0644)"},
		{"group-writable", func(t *testing.T, d string) { write(t, d, "A="+value+"\n", 0o660) }, "", []string{"A"}, []string{"A"}, "is writable by its group (mode 0660)"},
		{"a directory", func(t *testing.T, d string) { os.MkdirAll(Path(d, "acme", "app", "prod"), 0o700) }, "", []string{"A"}, []string{"A"}, "is not a regular file"},
		{"not dotenv", func(t *testing.T, d string) { write(t, d, "A=\""+value+"\n", 0o600) }, "", []string{"A"}, []string{"A"}, "is not a dotenv file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.setup != nil {
				c.setup(t, dir)
			}
			if c.dir == "-" {
				dir = ""
			}
			got, err := Load(dir, "acme", "app", "prod", c.names)
			m, ok := errors.AsType[*Missing](err)
			if !ok || got != nil {
				t.Fatalf("Load = %q, %v; want a *Missing", got, err)
			}
			if !reflect.DeepEqual(m.Names, c.missing) || !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q (names %q), want names %q and %q", err, m.Names, c.missing, c.why)
			}
			if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows the value: %q", err)
			}
		})
	}
	for _, bad := range []string{"..", ".", "a/b", ""} {
		if _, err := Load(t.TempDir(), bad, "app", "prod", []string{"A"}); err == nil {
			t.Errorf("owner %q: no error", bad)
		}
	}
}

func TestForms(t *testing.T) {
	forms := Forms(value, "", "abc")
	hidden := func(text string) bool {
		for _, f := range forms {
			text = strings.ReplaceAll(text, f, "***")
		}
		return !strings.Contains(text, "s3cr3t") && !strings.Contains(text, "abc")
	}
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	for name, text := range map[string]string{
		"as written":        "token: " + value + "\n",
		"std base64":        b64(base64.StdEncoding, value),
		"url base64":        b64(base64.URLEncoding, value),
		"raw std base64":    b64(base64.RawStdEncoding, value),
		"raw url base64":    b64(base64.RawURLEncoding, value),
		"query escaped":     "?t=" + url.QueryEscape(value),
		"path escaped":      "/v/" + url.PathEscape(value),
		"short std base64":  b64(base64.StdEncoding, "abc"),
		"short url escaped": url.QueryEscape("abc"),
	} {
		if !hidden(text) {
			t.Errorf("%s: %q is not hidden", name, text)
		}
	}
	// Inside a larger stream, at each offset mod 3, with what follows too
	// (echo "$S" | base64 encodes a newline after it): the value's own
	// characters are hidden, at most a character of them on either side is not.
	for _, prefix := range []string{"", "x", "xy", "user:"} {
		for _, suffix := range []string{"", "\n", "@host"} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
				stream := b64(enc, prefix+value+suffix)
				redacted := stream
				for _, f := range forms {
					redacted = strings.ReplaceAll(redacted, f, "***")
				}
				if !strings.Contains(redacted, "***") || len(redacted) > len(stream)-len(b64(base64.RawStdEncoding, value))+3+4 {
					t.Errorf("%q+value+%q: %q redacted to %q", prefix, suffix, stream, redacted)
				}
			}
		}
	}
	if Forms("") != nil {
		t.Errorf("Forms(\"\") = %q, want none", Forms(""))
	}
	for i := 1; i < len(forms); i++ {
		if len(forms[i]) > len(forms[i-1]) {
			t.Fatalf("forms not longest first: %q", forms)
		}
	}
	for _, f := range forms {
		if len(f) < 3 {
			t.Errorf("form %q is too short to redact without hiding ordinary text", f)
		}
	}
}
