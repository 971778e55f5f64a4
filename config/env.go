package config

import (
	"cmp"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/rs/zerolog"
)

// Env is the process configuration from the environment and .env
// (docs/reference.md#configuration).
// Formatting it with fmt, zerolog or encoding/json never shows a secret.
type Env struct {
	V3APIURL string // GITHUB_V3_API_URL, ends in "/"
	WebURL   string // GITHUB_WEB_URL, ends in "/"

	AppID          int64  // GITHUB_APP_INTEGRATION_ID
	WebhookSecret  string `json:"-"` // GITHUB_APP_WEBHOOK_SECRET
	PrivateKey     []byte `json:"-"` // PEM text from GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE
	PrivateKeyFile string // GITHUB_APP_PRIVATE_KEY_FILE, when the key came from a file; steps must not reach it

	Addr     string // RAILYARD_ADDR
	RedisURL string `json:"-"` // RAILYARD_REDIS_URL; "" means the embedded store
	// RedisCluster is RAILYARD_REDIS_CLUSTER=on: RedisURL names a Redis
	// Cluster (one node, more as addr= parameters).
	RedisCluster bool
	WorkDir      string        // RAILYARD_WORKDIR
	SecretsDir   string        // RAILYARD_SECRETS_DIR: <owner>/<repo>/<stage>.env files of secrets for steps; "" grants none
	Workers      int           // RAILYARD_WORKERS, 1..256
	LogLevel     zerolog.Level // RAILYARD_LOG_LEVEL
	LogFormat    string        // RAILYARD_LOG_FORMAT: "json" or "console"
	PublicURL    string        // RAILYARD_PUBLIC_URL without a trailing "/"; "" means taken from the request
	StatusPage   bool          // RAILYARD_STATUS_PAGE: on, or public
	RetryFor     time.Duration // RAILYARD_RETRY_FOR: how long failing work is retried before it is dead-lettered

	StatusUser     string // RAILYARD_STATUS_USER; basic auth for the status pages
	StatusPassword string `json:"-"` // RAILYARD_STATUS_PASSWORD
	// StatusPublic is RAILYARD_STATUS_PAGE=public: the pages ask for no
	// credentials. "on" without credentials is a configuration error.
	StatusPublic bool

	// IntakeBudget is RAILYARD_INTAKE_BUDGET_MIB in bytes: the memory all
	// webhook requests together may hold for bodies whose signature is not
	// yet checked. Zero means DefaultIntakeBudget.
	IntakeBudget int64

	// Steps are isolated from the bot's secrets unless RAILYARD_STEP_ISOLATION
	// is off; the zero value is isolated (SECURITY.md).
	StepIsolationOff bool   // RAILYARD_STEP_ISOLATION=off
	StepUser         string // RAILYARD_STEP_USER: who steps run as when the bot is root; default nobody

	// GitHub write budgets per installation: RAILYARD_GITHUB_CONTENT_PER_MINUTE
	// and _PER_HOUR for comments and reactions, RAILYARD_GITHUB_POINTS_PER_MINUTE
	// for check runs and deployments. Zero means GitHub's published limit,
	// NoLimit ("0" in the variable) none, for GitHub Enterprise Server.
	ContentPerMinute, ContentPerHour, PointsPerMinute int
}

// NoLimit is a GitHub write budget set to "0": no limit.
const NoLimit = -1

// DefaultIntakeBudget is Env.IntakeBudget when RAILYARD_INTAKE_BUDGET_MIB is
// not set: two of GitHub's largest deliveries, or thousands of pushes.
const DefaultIntakeBudget = 64 << 20

// The least intake budget: GitHub's largest delivery, 25 MB, must fit.
const minIntakeBudgetMiB = 25

const maxWorkers = 256

// DotenvPath is the .env file the bot reads, in its working directory.
const DotenvPath = ".env"

// LoadEnv reads the configuration through getenv (os.LookupEnv in main) and
// the .env file at dotenvPath, if that file exists ("" reads none). A variable
// present in the real environment wins over .env, even when it is empty.
// The process environment is never changed.
//
// All problems are reported together, one per line of the error's message.
// Without any App credentials the result is setup mode, not an error.
func LoadEnv(getenv func(string) (string, bool), dotenvPath string) (Env, error) {
	r := envReader{getenv: getenv}
	r.readDotenv(dotenvPath)

	e := Env{
		V3APIURL:   r.baseURL("GITHUB_V3_API_URL", "https://api.github.com/"),
		WebURL:     r.baseURL("GITHUB_WEB_URL", "https://github.com/"),
		Addr:       r.addr("RAILYARD_ADDR", ":8080"),
		RedisURL:   r.redisURL("RAILYARD_REDIS_URL"),
		WorkDir:    r.get("RAILYARD_WORKDIR", "./.railyard/work"),
		SecretsDir: r.get("RAILYARD_SECRETS_DIR", ""),
		Workers:    r.workers("RAILYARD_WORKERS", 4),
		LogLevel:   r.logLevel("RAILYARD_LOG_LEVEL", zerolog.InfoLevel),
		LogFormat:  r.oneOf("RAILYARD_LOG_FORMAT", "json", "json", "console"),
		PublicURL:  r.publicURL("RAILYARD_PUBLIC_URL"),
		StatusPage: r.statusPage("RAILYARD_STATUS_PAGE"),
		RetryFor:   r.duration("RAILYARD_RETRY_FOR", time.Hour, time.Minute),

		IntakeBudget: r.mebibytes("RAILYARD_INTAKE_BUDGET_MIB", minIntakeBudgetMiB),

		StepIsolationOff: r.oneOf("RAILYARD_STEP_ISOLATION", "on", "on", "off") == "off",
		StepUser:         r.get("RAILYARD_STEP_USER", "nobody"),
		ContentPerMinute: r.limit("RAILYARD_GITHUB_CONTENT_PER_MINUTE"),
		ContentPerHour:   r.limit("RAILYARD_GITHUB_CONTENT_PER_HOUR"),
		PointsPerMinute:  r.limit("RAILYARD_GITHUB_POINTS_PER_MINUTE"),
	}
	e.RedisCluster = r.redisCluster("RAILYARD_REDIS_CLUSTER", e.RedisURL)
	e.AppID, e.WebhookSecret, e.PrivateKey, e.PrivateKeyFile = r.credentials()
	e.StatusPublic = strings.EqualFold(strings.TrimSpace(r.lookup("RAILYARD_STATUS_PAGE")), statusPublic)
	e.StatusUser, e.StatusPassword = r.statusAuth(e.StatusPage, e.StatusPublic)

	if err := errors.Join(r.errs...); err != nil {
		return Env{}, err
	}
	return e, nil
}

// SetupMode reports whether no App credentials were given at all, in which
// case the bot serves its setup page instead of webhooks.
func (e Env) SetupMode() bool {
	return e.AppID == 0 && len(e.PrivateKey) == 0 && e.WebhookSecret == ""
}

// Secrets returns the secret values in e, for redaction of logs and output.
func (e Env) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	add(e.WebhookSecret)
	add(string(e.PrivateKey))
	if u, err := url.Parse(e.RedisURL); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		add(pw)
	}
	add(e.StatusPassword)
	return out
}

// String describes e with its secrets replaced.
func (e Env) String() string {
	return fmt.Sprintf("config.Env{V3APIURL:%s WebURL:%s AppID:%d WebhookSecret:%s PrivateKey:%s "+
		"Addr:%s RedisURL:%s RedisCluster:%t WorkDir:%s SecretsDir:%s Workers:%d LogLevel:%s LogFormat:%s PublicURL:%s "+
		"StatusPage:%t RetryFor:%s StatusUser:%s StatusPassword:%s StatusPublic:%t IntakeBudget:%d "+
		"PrivateKeyFile:%s StepIsolationOff:%t StepUser:%s}",
		e.V3APIURL, e.WebURL, e.AppID, redact(e.WebhookSecret), redact(string(e.PrivateKey)),
		e.Addr, redactURL(e.RedisURL), e.RedisCluster, e.WorkDir, e.SecretsDir, e.Workers, e.LogLevel, e.LogFormat, e.PublicURL,
		e.StatusPage, e.RetryFor, e.StatusUser, redact(e.StatusPassword), e.StatusPublic,
		cmp.Or(e.IntakeBudget, DefaultIntakeBudget), e.PrivateKeyFile, e.StepIsolationOff, e.StepUser)
}

// Format makes every verb (%v, %+v, %#v, %d, ...) print String, so no
// formatting of an Env can reach its fields directly.
func (e Env) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), e.String())
}

// MarshalZerologObject logs e without its secrets.
func (e Env) MarshalZerologObject(ev *zerolog.Event) {
	ev.Str("github_v3_api_url", e.V3APIURL).
		Str("github_web_url", e.WebURL).
		Int64("github_app_id", e.AppID).
		Bool("webhook_secret_set", e.WebhookSecret != "").
		Bool("private_key_set", len(e.PrivateKey) > 0).
		Str("addr", e.Addr).
		Str("redis_url", redactURL(e.RedisURL)).
		Bool("redis_cluster", e.RedisCluster).
		Str("workdir", e.WorkDir).
		Str("secrets_dir", e.SecretsDir).
		Int("workers", e.Workers).
		Str("log_level", e.LogLevel.String()).
		Str("log_format", e.LogFormat).
		Str("public_url", e.PublicURL).
		Bool("status_page", e.StatusPage).
		Bool("status_auth", e.StatusUser != "").
		Bool("status_public", e.StatusPublic).
		Str("retry_for", e.RetryFor.String()).
		Int64("intake_budget_bytes", cmp.Or(e.IntakeBudget, DefaultIntakeBudget)).
		Bool("step_isolation", !e.StepIsolationOff).
		Str("step_user", e.StepUser)
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[redacted]"
	}
	return u.Redacted()
}

// envReader looks variables up (real environment first, then .env) and
// collects every problem instead of stopping at the first.
type envReader struct {
	getenv func(string) (string, bool)
	dotenv map[string]string
	errs   []error
}

func (r *envReader) failf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

func (r *envReader) readDotenv(path string) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.failf("%s: %w", path, err)
		return
	}
	r.dotenv, err = godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv's messages quote the file's text, which holds secrets.
		r.failf("%s: cannot parse: a quoted value is not closed, or a line is not KEY=value", path)
	}
}

func (r *envReader) lookup(key string) string {
	if v, ok := r.getenv(key); ok {
		return v
	}
	return r.dotenv[key]
}

func (r *envReader) get(key, def string) string {
	if v := r.lookup(key); v != "" {
		return v
	}
	return def
}

// HTTPURL parses s as an absolute http or https URL, as GitHub's base URLs
// and the bot's public URL must be; ok is false for anything else.
func HTTPURL(s string) (u *url.URL, ok bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

func (r *envReader) baseURL(key, def string) string {
	v := r.get(key, def)
	if _, ok := HTTPURL(v); !ok {
		r.failf("%s: %q is not an http(s) URL", key, v)
		return ""
	}
	// go-github requires base URLs to end in a slash.
	if !strings.HasSuffix(v, "/") {
		v += "/"
	}
	return v
}

func (r *envReader) publicURL(key string) string {
	v := r.get(key, "")
	if v == "" {
		return ""
	}
	if _, ok := HTTPURL(v); !ok {
		r.failf("%s: %q is not an absolute http(s) URL", key, v)
		return ""
	}
	// Callers append paths.
	return strings.TrimRight(v, "/")
}

func (r *envReader) addr(key, def string) string {
	v := r.get(key, def)
	if _, _, err := net.SplitHostPort(v); err != nil {
		r.failf("%s: %q is not a listen address like :8080 or 127.0.0.1:8080", key, v)
		return ""
	}
	return v
}

func (r *envReader) redisURL(key string) string {
	v := r.get(key, "")
	if v == "" {
		return ""
	}
	// The URL may hold a password: never quote it.
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		r.failf("%s: not a redis:// or rediss:// URL", key)
		return ""
	}
	return v
}

// workers reads the number of concurrent jobs.
func (r *envReader) workers(key string, def int) int {
	n, ok := r.whole(key, wholeRange{min: 1, max: maxWorkers})
	if !ok {
		return def
	}
	return int(n)
}

// wholeRange is what a whole-number variable allows.
type wholeRange struct {
	min, max int64
	unit     string // what the number counts ("MiB"), if the message should say
	minMeans string // what min stands for ("no limit"), if not itself
}

// whole reads a whole number between rng.min and rng.max. ok is false when
// the variable is not set or not allowed (then a problem naming the
// variable, its value and the range is recorded).
func (r *envReader) whole(key string, rng wholeRange) (n int64, ok bool) {
	v := strings.TrimSpace(r.get(key, ""))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil && n >= rng.min && n <= rng.max {
		return n, true
	}
	what := "a whole number"
	if rng.unit != "" {
		what += " of " + rng.unit
	}
	min := strconv.FormatInt(rng.min, 10)
	if rng.minMeans != "" {
		min += " (" + rng.minMeans + ")"
	}
	r.failf("%s: %q is not %s between %s and %d", key, v, what, min, rng.max)
	return 0, false
}

// duration reads a Go duration ("90m", "2h") of at least min.
func (r *envReader) duration(key string, def, min time.Duration) time.Duration {
	v := strings.TrimSpace(r.get(key, ""))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		r.failf("%s: %q is not a duration such as 90m or 2h", key, v)
		return def
	case d < min:
		r.failf("%s: %v is shorter than %v", key, d, min)
		return def
	}
	return d
}

func (r *envReader) logLevel(key string, def zerolog.Level) zerolog.Level {
	v := r.get(key, "")
	if v == "" {
		return def
	}
	l, err := zerolog.ParseLevel(strings.ToLower(strings.TrimSpace(v)))
	if err != nil || l < zerolog.DebugLevel || l > zerolog.ErrorLevel {
		r.failf("%s: %q is not one of debug, info, warn, error", key, v)
		return def
	}
	return l
}

// redisCluster reads the cluster switch and checks that the Redis URL
// suits it: a cluster needs a URL, has only database 0, and several
// addresses (addr=) make sense only on a cluster.
func (r *envReader) redisCluster(key, redisURL string) bool {
	on := r.oneOf(key, "off", "on", "off") == "on"
	u, err := url.Parse(redisURL)
	if err != nil || redisURL == "" {
		if on && strings.TrimSpace(r.lookup("RAILYARD_REDIS_URL")) == "" {
			r.failf("%s=on needs RAILYARD_REDIS_URL: the embedded store is not a cluster", key)
		}
		return on
	}
	switch {
	case on && strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0":
		r.failf("RAILYARD_REDIS_URL: a Redis Cluster has only database 0; drop the /%s", strings.Trim(u.Path, "/"))
	case !on && u.Query().Has("addr"):
		r.failf("RAILYARD_REDIS_URL: several addresses (addr=) name a Redis Cluster; set %s=on", key)
	}
	return on
}

func (r *envReader) oneOf(key, def string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(r.get(key, def)))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.failf("%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
	return def
}

// statusPublic turns the status pages on without credentials.
const statusPublic = "public"

// statusPage reads on, off (or a boolean) and public.
func (r *envReader) statusPage(key string) bool {
	v := strings.ToLower(strings.TrimSpace(r.get(key, "off")))
	switch v {
	case "on", statusPublic:
		return true
	case "off":
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.failf("%s: %q is not on, off or public", key, v)
	}
	return b
}

// credentials reads the App's id, webhook secret and key: all three, or
// none at all for setup mode.
func (r *envReader) credentials() (id int64, secret string, key []byte, keyPath string) {
	idText := strings.TrimSpace(r.lookup("GITHUB_APP_INTEGRATION_ID"))
	secret = r.lookup("GITHUB_APP_WEBHOOK_SECRET")
	keyText, keyFile := r.lookup("GITHUB_APP_PRIVATE_KEY"), r.lookup("GITHUB_APP_PRIVATE_KEY_FILE")

	var missing []string
	if idText == "" {
		missing = append(missing, "GITHUB_APP_INTEGRATION_ID")
	}
	if secret == "" {
		missing = append(missing, "GITHUB_APP_WEBHOOK_SECRET")
	}
	if keyText == "" && keyFile == "" {
		missing = append(missing, "GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE")
	}
	if len(missing) == 3 {
		return 0, "", nil, "" // setup mode
	}
	if len(missing) > 0 {
		r.failf("GitHub App credentials are incomplete: %s missing (set all of them, or none to start in setup mode)",
			strings.Join(missing, ", "))
	}

	if idText != "" {
		var err error
		id, err = strconv.ParseInt(idText, 10, 64)
		switch {
		case err != nil:
			r.failf("GITHUB_APP_INTEGRATION_ID: %q is not a number", idText)
		case id <= 0:
			r.failf("GITHUB_APP_INTEGRATION_ID: %d is not a positive number", id)
		}
	}

	switch {
	case keyText != "" && keyFile != "":
		r.failf("GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_FILE are both set; set only one")
	case keyText != "":
		// One-line forms (.env files, CI secrets) carry newlines as "\n".
		key = []byte(strings.ReplaceAll(keyText, `\n`, "\n"))
		if err := checkRSAKey(key); err != nil {
			r.failf("GITHUB_APP_PRIVATE_KEY: %w", err)
		}
	case keyFile != "":
		var err error
		keyPath = keyFile
		key, err = os.ReadFile(keyFile)
		if err != nil {
			r.failf("GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		} else if err := checkRSAKey(key); err != nil {
			r.failf("GITHUB_APP_PRIVATE_KEY_FILE: %s: %w", keyFile, err)
		}
	}
	return id, secret, key, keyPath
}

// checkRSAKey reports whether data is a PEM RSA private key, in PKCS#1 or
// PKCS#8 form. Its errors never quote the key.
func checkRSAKey(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil {
		return errors.New("not PEM text (expected -----BEGIN RSA PRIVATE KEY-----)")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("the %q PEM block is not a PKCS#1 or PKCS#8 private key", block.Type)
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return fmt.Errorf("the private key is a %T, not an RSA key", key)
	}
	return nil
}

// statusAuth reads the status pages' credentials. Pages that are on need
// them unless they were made public on purpose: pipeline state, actors and
// reasons are not for anyone who can reach the port.
func (r *envReader) statusAuth(on, public bool) (user, password string) {
	user, password = r.lookup("RAILYARD_STATUS_USER"), r.lookup("RAILYARD_STATUS_PASSWORD")
	switch {
	case user != "" && password == "":
		r.failf("RAILYARD_STATUS_USER is set without RAILYARD_STATUS_PASSWORD; set both or neither")
	case user == "" && password != "":
		r.failf("RAILYARD_STATUS_PASSWORD is set without RAILYARD_STATUS_USER; set both or neither")
	case public && user != "":
		r.failf("RAILYARD_STATUS_PAGE is public, yet RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD are set; " +
			"set it to on to ask for them, or unset them")
	case on && !public && user == "":
		r.failf("RAILYARD_STATUS_PAGE is on without RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD; " +
			"set both to ask for them, or set RAILYARD_STATUS_PAGE=public to serve the pages to anyone who can reach the bot")
	}
	return user, password
}

// maxMiB bounds RAILYARD_INTAKE_BUDGET_MIB at 1 TiB: more is a typo.
const maxMiB = 1 << 20

// mebibytes reads a whole number of MiB, at least least, and returns it in
// bytes; 0 when the variable is not set.
func (r *envReader) mebibytes(key string, least int64) int64 {
	n, _ := r.whole(key, wholeRange{min: least, max: maxMiB, unit: "MiB"})
	return n << 20
}

// maxLimit bounds a GitHub write budget far above any published limit.
const maxLimit = 1_000_000

// limit reads a budget: unset is 0 (the default), "0" is NoLimit.
func (r *envReader) limit(key string) int {
	n, ok := r.whole(key, wholeRange{min: 0, max: maxLimit, minMeans: "no limit"})
	switch {
	case !ok:
		return 0
	case n == 0:
		return NoLimit
	}
	return int(n)
}
