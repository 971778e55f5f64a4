package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testKeys are generated once: RSA generation is the slow part of these tests.
var testKeys = sync.OnceValue(func() (k struct{ pkcs1, pkcs8, ec string }) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	k.pkcs1 = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		panic(err)
	}
	k.pkcs8 = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err = x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		panic(err)
	}
	k.ec = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return k
})

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// loadEnv is LoadEnv of env, with a .env file holding dotenv when that is
// not "".
func loadEnv(t *testing.T, env map[string]string, dotenv string) (Env, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if dotenv != "" {
		if err := os.WriteFile(path, []byte(dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return LoadEnv(lookupIn(env), path)
}

// Distinctive secrets, so tests can tell whether any of them leaked.
const (
	leakWebhook = "whsec-DO-NOT-LEAK-1"
	leakRedis   = "redispw-DO-NOT-LEAK-2"
	leakStatus  = "statuspw-DO-NOT-LEAK-3"
	leakMarker  = "DO-NOT-LEAK"
)

func withCreds(m map[string]string) map[string]string {
	out := map[string]string{
		"GITHUB_APP_INTEGRATION_ID": "42",
		"GITHUB_APP_WEBHOOK_SECRET": leakWebhook,
		"GITHUB_APP_PRIVATE_KEY":    testKeys().pkcs1,
	}
	for k, v := range m {
		out[k] = v
	}
	return out
}

var defaultEnv = Env{
	V3APIURL:  "https://api.github.com/",
	WebURL:    "https://github.com/",
	Addr:      ":8080",
	WorkDir:   "./.railyard/work",
	Workers:   4,
	LogLevel:  zerolog.InfoLevel,
	LogFormat: "json",
	RetryFor:  time.Hour,
	StepUser:  "nobody",
}

func TestLoadEnv(t *testing.T) {
	keys := testKeys()
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, []byte(keys.pkcs8), 0o600); err != nil {
		t.Fatal(err)
	}
	withDefaults := func(f func(*Env)) Env {
		e := defaultEnv
		f(&e)
		return e
	}
	creds := func(e *Env) {
		e.AppID, e.WebhookSecret, e.PrivateKey = 42, leakWebhook, []byte(keys.pkcs1)
	}

	tests := []struct {
		name      string
		env       map[string]string
		dotenv    string // written to .env when not empty
		want      Env
		wantSetup bool
	}{
		{
			name:      "nothing set is setup mode with defaults",
			env:       map[string]string{},
			want:      defaultEnv,
			wantSetup: true,
		},
		{
			name: "every variable",
			env: withCreds(map[string]string{
				"GITHUB_V3_API_URL":        "https://ghe.example.com/api/v3",
				"GITHUB_WEB_URL":           "https://ghe.example.com",
				"RAILYARD_ADDR":            "127.0.0.1:9000",
				"RAILYARD_REDIS_URL":       "rediss://:" + leakRedis + "@redis.example.com:6380/2",
				"RAILYARD_WORKDIR":         "/var/lib/railyard",
				"RAILYARD_SECRETS_DIR":     "/etc/railyard/secrets",
				"RAILYARD_WORKERS":         "16",
				"RAILYARD_LOG_LEVEL":       "debug",
				"RAILYARD_LOG_FORMAT":      "console",
				"RAILYARD_PUBLIC_URL":      "https://bot.example.com/",
				"RAILYARD_STATUS_PAGE":     "on",
				"RAILYARD_STATUS_USER":     "ops",
				"RAILYARD_STATUS_PASSWORD": leakStatus,
				"RAILYARD_RETRY_FOR":       "90m",
			}),
			want: Env{
				V3APIURL:       "https://ghe.example.com/api/v3/",
				WebURL:         "https://ghe.example.com/",
				AppID:          42,
				WebhookSecret:  leakWebhook,
				PrivateKey:     []byte(keys.pkcs1),
				Addr:           "127.0.0.1:9000",
				RedisURL:       "rediss://:" + leakRedis + "@redis.example.com:6380/2",
				WorkDir:        "/var/lib/railyard",
				SecretsDir:     "/etc/railyard/secrets",
				Workers:        16,
				LogLevel:       zerolog.DebugLevel,
				LogFormat:      "console",
				PublicURL:      "https://bot.example.com",
				StatusPage:     true,
				StatusUser:     "ops",
				StatusPassword: leakStatus,
				RetryFor:       90 * time.Minute,
				StepUser:       "nobody",
			},
		},
		{
			name: "Redis Cluster: one node in the URL, more as addr=",
			env: withCreds(map[string]string{
				"RAILYARD_REDIS_URL":     "redis://:" + leakRedis + "@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000",
				"RAILYARD_REDIS_CLUSTER": "on",
			}),
			want: withDefaults(func(e *Env) {
				creds(e)
				e.RedisURL, e.RedisCluster = "redis://:"+leakRedis+"@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", true
			}),
		},
		{
			name: "GitHub write budgets, 0 is no limit",
			env: withCreds(map[string]string{
				"RAILYARD_GITHUB_CONTENT_PER_MINUTE": "20",
				"RAILYARD_GITHUB_CONTENT_PER_HOUR":   "0",
				"RAILYARD_GITHUB_POINTS_PER_MINUTE":  " 450 ",
			}),
			want: withDefaults(func(e *Env) {
				creds(e)
				e.ContentPerMinute, e.ContentPerHour, e.PointsPerMinute = 20, NoLimit, 450
			}),
		},
		{
			name: "key with literal \\n escapes",
			env: withCreds(map[string]string{
				"GITHUB_APP_PRIVATE_KEY": strings.ReplaceAll(keys.pkcs1, "\n", `\n`),
			}),
			want: withDefaults(creds),
		},
		{
			name: "PKCS#8 key file",
			env: withCreds(map[string]string{
				"GITHUB_APP_PRIVATE_KEY":      "",
				"GITHUB_APP_PRIVATE_KEY_FILE": keyFile,
			}),
			want: withDefaults(func(e *Env) { creds(e); e.PrivateKey, e.PrivateKeyFile = []byte(keys.pkcs8), keyFile }),
		},
		{
			name:   ".env is read",
			env:    map[string]string{},
			dotenv: "# local settings\nRAILYARD_WORKERS=7\nexport RAILYARD_STATUS_PAGE=true\nRAILYARD_STATUS_USER=ops\nRAILYARD_STATUS_PASSWORD=" + leakStatus + "\n",
			want: withDefaults(func(e *Env) {
				e.Workers, e.StatusPage, e.StatusUser, e.StatusPassword = 7, true, "ops", leakStatus
			}),
			wantSetup: true,
		},
		{
			name:      "the real environment wins over .env, even when empty",
			env:       map[string]string{"RAILYARD_WORKERS": "9", "RAILYARD_LOG_LEVEL": ""},
			dotenv:    "RAILYARD_WORKERS=7\nRAILYARD_LOG_LEVEL=warn\n",
			want:      withDefaults(func(e *Env) { e.Workers = 9 }),
			wantSetup: true,
		},
		{
			name:   "credentials from .env",
			env:    map[string]string{},
			dotenv: fmt.Sprintf("GITHUB_APP_INTEGRATION_ID=42\nGITHUB_APP_WEBHOOK_SECRET=%s\nGITHUB_APP_PRIVATE_KEY=%q\n", leakWebhook, keys.pkcs1),
			want:   withDefaults(creds),
		},
		{
			name:      "status page off",
			env:       map[string]string{"RAILYARD_STATUS_PAGE": "off"},
			want:      defaultEnv,
			wantSetup: true,
		},
		{
			name: "status page 1 with credentials",
			env: map[string]string{
				"RAILYARD_STATUS_PAGE": "1", "RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": leakStatus,
			},
			want:      withDefaults(func(e *Env) { e.StatusPage, e.StatusUser, e.StatusPassword = true, "ops", leakStatus }),
			wantSetup: true,
		},
		{
			name:      "status page public asks for no credentials",
			env:       map[string]string{"RAILYARD_STATUS_PAGE": " Public "},
			want:      withDefaults(func(e *Env) { e.StatusPage, e.StatusPublic = true, true }),
			wantSetup: true,
		},
		{
			name:      "status credentials with the pages off are kept for later",
			env:       map[string]string{"RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": leakStatus},
			want:      withDefaults(func(e *Env) { e.StatusUser, e.StatusPassword = "ops", leakStatus }),
			wantSetup: true,
		},
		{
			name:      "step isolation off, steps as a named user",
			env:       map[string]string{"RAILYARD_STEP_ISOLATION": "OFF", "RAILYARD_STEP_USER": "builder"},
			want:      withDefaults(func(e *Env) { e.StepIsolationOff, e.StepUser = true, "builder" }),
			wantSetup: true,
		},
		{
			name:      "status page FALSE",
			env:       map[string]string{"RAILYARD_STATUS_PAGE": "FALSE"},
			want:      defaultEnv,
			wantSetup: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadEnv(t, tt.env, tt.dotenv)
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadEnv:\n got %v\nwant %v", rawFields(got), rawFields(tt.want))
			}
			if got.SetupMode() != tt.wantSetup {
				t.Errorf("SetupMode() = %t, want %t", got.SetupMode(), tt.wantSetup)
			}
		})
	}
}

// rawFields lists an Env's field values, bypassing its redacting formatter.
func rawFields(e Env) []any {
	v := reflect.ValueOf(e)
	out := make([]any, v.NumField())
	for i := range out {
		out[i] = v.Type().Field(i).Name + "=" + fmt.Sprint(v.Field(i).Interface())
	}
	return out
}

func TestLoadEnvProblems(t *testing.T) {
	keys := testKeys()
	missingFile := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name   string
		env    map[string]string
		dotenv string
		want   []string // each line of the error, in order, as a substring
	}{
		{
			name: "app id not a number",
			env:  withCreds(map[string]string{"GITHUB_APP_INTEGRATION_ID": "abc"}),
			want: []string{`GITHUB_APP_INTEGRATION_ID: "abc" is not a number`},
		},
		{
			name: "app id not positive",
			env:  withCreds(map[string]string{"GITHUB_APP_INTEGRATION_ID": "-3"}),
			want: []string{`GITHUB_APP_INTEGRATION_ID: -3 is not a positive number`},
		},
		{
			name: "only the app id",
			env:  map[string]string{"GITHUB_APP_INTEGRATION_ID": "42"},
			want: []string{"credentials are incomplete: GITHUB_APP_WEBHOOK_SECRET, GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE missing"},
		},
		{
			name: "no webhook secret",
			env:  withCreds(map[string]string{"GITHUB_APP_WEBHOOK_SECRET": ""}),
			want: []string{"credentials are incomplete: GITHUB_APP_WEBHOOK_SECRET missing"},
		},
		{
			name: "only the secret and key",
			env:  withCreds(map[string]string{"GITHUB_APP_INTEGRATION_ID": ""}),
			want: []string{"credentials are incomplete: GITHUB_APP_INTEGRATION_ID missing"},
		},
		{
			name: "both key variables",
			env:  withCreds(map[string]string{"GITHUB_APP_PRIVATE_KEY_FILE": "/etc/app.pem"}),
			want: []string{"GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_FILE are both set"},
		},
		{
			name: "key is not PEM",
			env:  withCreds(map[string]string{"GITHUB_APP_PRIVATE_KEY": "KEY-" + leakMarker}),
			want: []string{"GITHUB_APP_PRIVATE_KEY: not PEM text"},
		},
		{
			name: "key PEM block is garbage",
			env: withCreds(map[string]string{"GITHUB_APP_PRIVATE_KEY": string(pem.EncodeToMemory(
				&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte(leakMarker)}))}),
			want: []string{`GITHUB_APP_PRIVATE_KEY: the "RSA PRIVATE KEY" PEM block is not a PKCS#1 or PKCS#8 private key`},
		},
		{
			name: "key is not RSA",
			env:  withCreds(map[string]string{"GITHUB_APP_PRIVATE_KEY": keys.ec}),
			want: []string{"GITHUB_APP_PRIVATE_KEY: the private key is a *ecdsa.PrivateKey, not an RSA key"},
		},
		{
			name: "key file unreadable",
			env: withCreds(map[string]string{
				"GITHUB_APP_PRIVATE_KEY":      "",
				"GITHUB_APP_PRIVATE_KEY_FILE": missingFile,
			}),
			want: []string{"GITHUB_APP_PRIVATE_KEY_FILE: open " + missingFile + ": no such file or directory"},
		},
		{
			name: "bad URLs",
			env: map[string]string{
				"GITHUB_V3_API_URL":   "api.github.com",
				"GITHUB_WEB_URL":      "ftp://github.com/",
				"RAILYARD_PUBLIC_URL": "/relative",
			},
			want: []string{
				`GITHUB_V3_API_URL: "api.github.com" is not an http(s) URL`,
				`GITHUB_WEB_URL: "ftp://github.com/" is not an http(s) URL`,
				`RAILYARD_PUBLIC_URL: "/relative" is not an absolute http(s) URL`,
			},
		},
		{
			name: "redis URL with the wrong scheme is not quoted",
			env:  map[string]string{"RAILYARD_REDIS_URL": "http://:" + leakRedis + "@localhost:6379"},
			want: []string{"RAILYARD_REDIS_URL: not a redis:// or rediss:// URL"},
		},
		{
			name: "unparsable redis URL is not quoted",
			env:  map[string]string{"RAILYARD_REDIS_URL": "redis://:" + leakRedis + "@[::1"},
			want: []string{"RAILYARD_REDIS_URL: not a redis:// or rediss:// URL"},
		},
		{
			name: "Redis Cluster without a URL",
			env:  map[string]string{"RAILYARD_REDIS_CLUSTER": "on"},
			want: []string{"RAILYARD_REDIS_CLUSTER=on needs RAILYARD_REDIS_URL: the embedded store is not a cluster"},
		},
		{
			name: "Redis Cluster with a database number",
			env:  map[string]string{"RAILYARD_REDIS_CLUSTER": "on", "RAILYARD_REDIS_URL": "redis://:" + leakRedis + "@10.0.0.1:7000/2"},
			want: []string{"RAILYARD_REDIS_URL: a Redis Cluster has only database 0; drop the /2"},
		},
		{
			name: "several Redis addresses without the cluster switch",
			env:  map[string]string{"RAILYARD_REDIS_URL": "redis://:" + leakRedis + "@10.0.0.1:7000?addr=10.0.0.2:7000"},
			want: []string{"RAILYARD_REDIS_URL: several addresses (addr=) name a Redis Cluster; set RAILYARD_REDIS_CLUSTER=on"},
		},
		{
			name: "Redis Cluster switch neither on nor off",
			env:  map[string]string{"RAILYARD_REDIS_CLUSTER": "yes", "RAILYARD_REDIS_URL": "redis://10.0.0.1:7000"},
			want: []string{`RAILYARD_REDIS_CLUSTER: "yes" is not one of on, off`},
		},
		{
			name: "listen address",
			env:  map[string]string{"RAILYARD_ADDR": "8080"},
			want: []string{`RAILYARD_ADDR: "8080" is not a listen address`},
		},
		{
			name: "workers",
			env:  map[string]string{"RAILYARD_WORKERS": "many"},
			want: []string{`RAILYARD_WORKERS: "many" is not a whole number between 1 and 256`},
		},
		{
			name: "workers out of range",
			env:  map[string]string{"RAILYARD_WORKERS": "257"},
			want: []string{`RAILYARD_WORKERS: "257" is not a whole number between 1 and 256`},
		},
		{
			name: "retry duration",
			env:  map[string]string{"RAILYARD_RETRY_FOR": "forever"},
			want: []string{`RAILYARD_RETRY_FOR: "forever" is not a duration such as 90m or 2h`},
		},
		{
			name: "retry duration too short",
			env:  map[string]string{"RAILYARD_RETRY_FOR": "10s"},
			want: []string{"RAILYARD_RETRY_FOR: 10s is shorter than 1m0s"},
		},
		{
			name: "GitHub write budgets that are not limits",
			env: map[string]string{
				"RAILYARD_GITHUB_CONTENT_PER_MINUTE": "-1",
				"RAILYARD_GITHUB_CONTENT_PER_HOUR":   "1000001",
				"RAILYARD_GITHUB_POINTS_PER_MINUTE":  "lots",
			},
			want: []string{
				`RAILYARD_GITHUB_CONTENT_PER_MINUTE: "-1" is not a whole number between 0 (no limit) and 1000000`,
				`RAILYARD_GITHUB_CONTENT_PER_HOUR: "1000001" is not a whole number between 0 (no limit) and 1000000`,
				`RAILYARD_GITHUB_POINTS_PER_MINUTE: "lots" is not a whole number between 0 (no limit) and 1000000`,
			},
		},
		{
			name: "no workers",
			env:  map[string]string{"RAILYARD_WORKERS": "0"},
			want: []string{`RAILYARD_WORKERS: "0" is not a whole number between 1 and 256`},
		},
		{
			name: "log level and format",
			env:  map[string]string{"RAILYARD_LOG_LEVEL": "trace", "RAILYARD_LOG_FORMAT": "xml"},
			want: []string{
				`RAILYARD_LOG_LEVEL: "trace" is not one of debug, info, warn, error`,
				`RAILYARD_LOG_FORMAT: "xml" is not one of json, console`,
			},
		},
		{
			name: "status page",
			env:  map[string]string{"RAILYARD_STATUS_PAGE": "maybe"},
			want: []string{`RAILYARD_STATUS_PAGE: "maybe" is not on, off or public`},
		},
		{
			name: "status page on without credentials",
			env:  map[string]string{"RAILYARD_STATUS_PAGE": "on"},
			want: []string{"RAILYARD_STATUS_PAGE is on without RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD; " +
				"set both to ask for them, or set RAILYARD_STATUS_PAGE=public"},
		},
		{
			name: "status page true without credentials",
			env:  map[string]string{"RAILYARD_STATUS_PAGE": "true"},
			want: []string{"RAILYARD_STATUS_PAGE is on without RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD"},
		},
		{
			name: "status page on with only a user",
			env:  map[string]string{"RAILYARD_STATUS_PAGE": "on", "RAILYARD_STATUS_USER": "ops"},
			want: []string{"RAILYARD_STATUS_USER is set without RAILYARD_STATUS_PASSWORD"},
		},
		{
			name: "status page public with credentials",
			env: map[string]string{
				"RAILYARD_STATUS_PAGE": "public", "RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": leakStatus,
			},
			want: []string{"RAILYARD_STATUS_PAGE is public, yet RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD are set"},
		},
		{
			name: "step isolation",
			env:  map[string]string{"RAILYARD_STEP_ISOLATION": "no"},
			want: []string{`RAILYARD_STEP_ISOLATION: "no" is not one of on, off`},
		},
		{
			name: "status password without user",
			env:  map[string]string{"RAILYARD_STATUS_PASSWORD": leakStatus},
			want: []string{"RAILYARD_STATUS_PASSWORD is set without RAILYARD_STATUS_USER"},
		},
		{
			name: "status user without password",
			env:  map[string]string{"RAILYARD_STATUS_USER": "ops"},
			want: []string{"RAILYARD_STATUS_USER is set without RAILYARD_STATUS_PASSWORD"},
		},
		{
			name:   "unparsable .env is not quoted",
			env:    map[string]string{},
			dotenv: "GITHUB_APP_WEBHOOK_SECRET=\"" + leakWebhook + "\n",
			want:   []string{".env: cannot parse"},
		},
		{
			name: "every problem at once",
			env: map[string]string{
				"GITHUB_APP_INTEGRATION_ID": "abc",
				"RAILYARD_WORKERS":          "0",
				"RAILYARD_LOG_FORMAT":       "xml",
				"RAILYARD_STATUS_USER":      "ops",
			},
			want: []string{
				`RAILYARD_WORKERS: "0" is not a whole number between 1 and 256`,
				`RAILYARD_LOG_FORMAT: "xml" is not one of json, console`,
				"credentials are incomplete: GITHUB_APP_WEBHOOK_SECRET, GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE missing",
				`GITHUB_APP_INTEGRATION_ID: "abc" is not a number`,
				"RAILYARD_STATUS_USER is set without RAILYARD_STATUS_PASSWORD",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadEnv(t, tt.env, tt.dotenv)
			if err == nil {
				t.Fatal("LoadEnv: no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("error has %d lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				if !strings.Contains(lines[i], want) {
					t.Errorf("error line %d = %q, want it to contain %q", i+1, lines[i], want)
				}
			}
			for _, secret := range []string{leakMarker, "PRIVATE KEY-----\nMII"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error contains a secret (%q):\n%v", secret, err)
				}
			}
		})
	}
}

func TestEnvNeverPrintsSecrets(t *testing.T) {
	keys := testKeys()
	e, err := LoadEnv(lookupIn(withCreds(map[string]string{
		"RAILYARD_REDIS_URL":         "redis://default:" + leakRedis + "@127.0.0.1:6379/0",
		"RAILYARD_STATUS_USER":       "ops",
		"RAILYARD_STATUS_PASSWORD":   leakStatus,
		"RAILYARD_ADDR":              ":9999",
		"RAILYARD_SECRETS_DIR":       "/etc/railyard/secrets",
		"RAILYARD_RETRY_FOR":         "90m",
		"RAILYARD_INTAKE_BUDGET_MIB": "48",
	})), "")
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(keys.pkcs1, "\n")[1] // a base64 line of the key

	var logged bytes.Buffer
	logger := zerolog.New(&logged)
	logger.Info().Object("env", e).Interface("env_json", e).Msg("Starting.")
	jsonText, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"zerolog": logged.String(),
		"json":    string(jsonText),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		outputs[verb] = fmt.Sprintf(verb, e)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &e)
	}
	for name, out := range outputs {
		for _, secret := range []string{leakWebhook, leakRedis, leakStatus, keyBody} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output contains secret %q:\n%s", name, secret, out)
			}
		}
	}
	// The redacted forms still say what is configured.
	for _, name := range []string{"%v", "zerolog"} {
		for _, setting := range []string{"9999", "127.0.0.1:6379", "/etc/railyard/secrets", "1h30m0s", "50331648"} {
			if !strings.Contains(outputs[name], setting) {
				t.Errorf("%s output lost the non-secret setting %q:\n%s", name, setting, outputs[name])
			}
		}
	}

	want := []string{leakWebhook, keys.pkcs1, leakRedis, leakStatus}
	if got := e.Secrets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
}
