package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

func TestWriteDotenv(t *testing.T) {
	pemText := testKeys().pkcs1
	tests := []struct {
		name     string
		existing string // "" means no file
		mode     os.FileMode
		values   map[string]string
		want     string
	}{
		{
			name:   "creates the file",
			values: map[string]string{"GITHUB_APP_INTEGRATION_ID": "42", "GITHUB_APP_WEBHOOK_SECRET": "s3cret"},
			want:   "GITHUB_APP_INTEGRATION_ID=\"42\"\nGITHUB_APP_WEBHOOK_SECRET=\"s3cret\"\n",
		},
		{
			name: "keeps other lines, replaces keys in place, appends new ones",
			existing: "# Railyard\n" +
				"RAILYARD_ADDR=:9000\n" +
				"export GITHUB_APP_INTEGRATION_ID=1\n" +
				"\n" +
				"GITHUB_APP_PRIVATE_KEY=\"-----BEGIN RSA PRIVATE KEY-----\n" +
				"old\n" +
				"-----END RSA PRIVATE KEY-----\"\n" +
				"RAILYARD_WORKERS=2 # comment\n" +
				"GITHUB_APP_INTEGRATION_ID=3\n",
			mode: 0o644,
			values: map[string]string{
				"GITHUB_APP_INTEGRATION_ID": "42",
				"GITHUB_APP_PRIVATE_KEY":    "-----BEGIN-----\nnew\n",
				"GITHUB_APP_WEBHOOK_SECRET": "s3cret",
			},
			want: "# Railyard\n" +
				"RAILYARD_ADDR=:9000\n" +
				"GITHUB_APP_INTEGRATION_ID=\"42\"\n" +
				"\n" +
				"GITHUB_APP_PRIVATE_KEY=\"-----BEGIN-----\\nnew\\n\"\n" +
				"RAILYARD_WORKERS=2 # comment\n" +
				"GITHUB_APP_WEBHOOK_SECRET=\"s3cret\"\n",
		},
		{
			name:     "a multi-line value of another key is kept whole",
			existing: "OTHER=\"line one\nGITHUB_APP_WEBHOOK_SECRET=inside\"\nGITHUB_APP_WEBHOOK_SECRET=old",
			values:   map[string]string{"GITHUB_APP_WEBHOOK_SECRET": "new"},
			want:     "OTHER=\"line one\nGITHUB_APP_WEBHOOK_SECRET=inside\"\nGITHUB_APP_WEBHOOK_SECRET=\"new\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".env")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteDotenv(path, tt.values); err != nil {
				t.Fatalf("WriteDotenv: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file:\n%s\nwant:\n%s", got, tt.want)
			}
			assertMode(t, path)
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil || len(entries) != 1 {
				t.Errorf("directory holds %v (%v), want only .env", entries, err)
			}
		})
	}

	t.Run("values read back unchanged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), ".env")
		values := map[string]string{
			"GITHUB_APP_PRIVATE_KEY":    pemText,
			"GITHUB_APP_WEBHOOK_SECRET": `a"b'c\d$HOME ${X} !e` + "`f`",
			"GITHUB_APP_INTEGRATION_ID": "007",
			"EMPTY":                     "",
		}
		if err := WriteDotenv(path, values); err != nil {
			t.Fatal(err)
		}
		// Twice, so replacing our own lines is covered too.
		if err := WriteDotenv(path, values); err != nil {
			t.Fatal(err)
		}
		got, err := godotenv.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range values {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		env, err := LoadEnv(lookupIn(nil), path)
		if err != nil {
			t.Fatalf("LoadEnv of the written file: %v", err)
		}
		if string(env.PrivateKey) != pemText || env.AppID != 7 {
			t.Errorf("LoadEnv read AppID %d and a different key", env.AppID)
		}
		assertMode(t, path)
	})

	t.Run("bad key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), ".env")
		err := WriteDotenv(path, map[string]string{"NOT A NAME": "x"})
		if err == nil || !strings.Contains(err.Error(), `"NOT A NAME" is not a variable name`) {
			t.Errorf("WriteDotenv = %v, want a bad name error", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("file was written: %v", err)
		}
	})

	t.Run("a value godotenv cannot read back is refused without quoting it", func(t *testing.T) {
		// godotenv takes a backslash before the closing quote as an escape.
		err := WriteDotenv(filepath.Join(t.TempDir(), ".env"), map[string]string{"K": `secret\`})
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("WriteDotenv = %v, want an error that does not quote the value", err)
		}
	})
}

func assertMode(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
}
