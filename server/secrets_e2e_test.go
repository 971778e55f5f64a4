package server_test

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/server"
)

// The secret an operator grants prod. Its characters make URL encoding and
// base64 differ from it, and "tok3n" finds it in raw request bodies.
const grantedSecret = "Zq9-tok3n/v+lue x&y=1"

// withSecretsDir has Railyard read operators' secrets from dir.
func withSecretsDir(dir string) harnessOption {
	return func(env *config.Env, _ *server.Options) { env.SecretsDir = dir }
}

// grant writes the secrets file of a stage of the test repository.
func grant(t *testing.T, dir, stage, content string) {
	t.Helper()
	p := filepath.Join(dir, "Codertocat", "Hello-World", stage+".env")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStageSecrets: a stage gets the secrets the operator grants it and the
// file names; another stage does not; whatever a step prints of them
// (plain, base64, URL-encoded) reaches GitHub as ***; a secret that is
// gone fails the job before any step, naming it and not its value.
func TestStageSecrets(t *testing.T) {
	t.Parallel()
	secretsDir := t.TempDir()
	grant(t, secretsDir, "prod", `DEPLOY_TOKEN="`+grantedSecret+`"`+"\nUNNAMED=not-asked-for\n")
	h := newHarness(t, `
stages:
  - name: build
    steps:
      - name: peek
        run: echo "build sees [${DEPLOY_TOKEN:-nothing}]"
  - name: prod
    secrets: [DEPLOY_TOKEN]
    steps:
      - name: use
        run: printf '%s' "$DEPLOY_TOKEN" > $DIR/prod-token; echo "prod sees [${UNNAMED:-nothing} unnamed]"
      - name: leak
        run: |
          echo "plain: $DEPLOY_TOKEN"
          printf '%s' "$DEPLOY_TOKEN" | base64
          echo "$DEPLOY_TOKEN" | base64
          printf 'user:%s@host' "$DEPLOY_TOKEN" | base64
          printf '%s' "$DEPLOY_TOKEN" | base64 | tr '+/' '-_'
          printf '%s' "$DEPLOY_TOKEN" | sed 's|/|%2F|g; s|+|%2B|g; s| |+|g; s|&|%26|g; s|=|%3D|g'
          echo done
    verify:
      run: echo "verify sees $DEPLOY_TOKEN"
    restart:
      - name: bounce
        run: printf '%s' "$DEPLOY_TOKEN" > $DIR/restart-token; echo "restart sees $DEPLOY_TOKEN"
`, withSecretsDir(secretsDir))

	a := h.commitAndPush()
	prod := h.awaitCheckRun("railyard/prod", a, "success")
	build := h.awaitCheckRun("railyard/build", a, "success")

	if got, _ := os.ReadFile(filepath.Join(h.dir, "prod-token")); string(got) != grantedSecret {
		t.Errorf("prod's step got DEPLOY_TOKEN %q, want the granted value", got)
	}
	if !strings.Contains(build.Text, "build sees [nothing]") {
		t.Errorf("build is not a stage the secret is granted to, yet its step saw it:\n%s", build.Text)
	}
	if !strings.Contains(prod.Text, "prod sees [nothing unnamed]") {
		t.Errorf("prod got a variable of the file it does not name:\n%s", prod.Text)
	}
	for _, want := range []string{"plain: ***", "verify sees ***", "done"} {
		if !strings.Contains(prod.Text, want) {
			t.Errorf("prod's check run lacks %q:\n%s", want, prod.Text)
		}
	}
	// Every form the step printed, as GitHub could show it.
	b64 := base64.StdEncoding.EncodeToString([]byte(grantedSecret))
	forms := []string{
		grantedSecret, "tok3n", b64, strings.TrimRight(b64, "="),
		base64.URLEncoding.EncodeToString([]byte(grantedSecret)),
		url.QueryEscape(grantedSecret), url.PathEscape(grantedSecret),
		base64.StdEncoding.EncodeToString([]byte(grantedSecret + "\n"))[:len(b64)-4],
		base64.StdEncoding.EncodeToString([]byte("user:" + grantedSecret + "@host"))[8:32],
	}
	for _, f := range forms {
		if strings.Contains(prod.Text+prod.Summary+prod.Title, f) {
			t.Errorf("prod's check run shows %q:\n%s", f, prod.Text)
		}
	}
	if n := strings.Count(prod.Text, "***"); n < 7 {
		t.Errorf("prod's check run has %d ***, want one per line that printed the secret:\n%s", n, prod.Text)
	}
	for _, r := range h.gh.Requests() {
		for _, f := range []string{"tok3n", b64[:len(b64)-4], url.QueryEscape(grantedSecret)} {
			if strings.Contains(string(r.Body), f) {
				t.Errorf("%s %s sent %q to GitHub", r.Method, r.Path, f)
			}
		}
	}

	// Restart steps get them too.
	h.comment("/restart stage=prod")
	h.await("prod's restart to succeed", func() bool {
		s := h.stage("prod")
		return s.Job.Operation == engine.OpRestart && s.State == engine.Succeeded
	})
	if got, _ := os.ReadFile(filepath.Join(h.dir, "restart-token")); string(got) != grantedSecret {
		t.Errorf("prod's restart step got DEPLOY_TOKEN %q, want the granted value", got)
	}
	if cr := h.awaitCheckRun("railyard/prod", a, "success"); !strings.Contains(cr.Text, "restart sees ***") {
		t.Errorf("restart check run does not hide the secret:\n%s", cr.Text)
	}

	// The operator removes the key: the next job fails before any step runs.
	grant(t, secretsDir, "prod", "OTHER=1\n")
	before, _ := os.ReadFile(filepath.Join(h.dir, "prod-token"))
	os.Remove(filepath.Join(h.dir, "prod-token"))
	h.comment("/redeploy stage=prod")
	h.await("prod's redeploy to fail", func() bool {
		s := h.stage("prod")
		return s.State == engine.Failed && s.Job.Operation == engine.OpRedeploy
	})
	cr := h.awaitCheckRun("railyard/prod", a, "failure")
	if !strings.Contains(cr.Summary, "secret DEPLOY_TOKEN: not in Codertocat/Hello-World/prod.env") || !strings.Contains(cr.Summary, "No step ran") {
		t.Errorf("failed check run does not name the missing secret:\n%s", cr.Summary)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "prod-token")); err == nil {
		t.Error("a step ran though its secret is missing")
	}
	if strings.Contains(cr.Summary+cr.Text, "tok3n") || len(before) == 0 {
		t.Errorf("check run shows the old value, or the first job never wrote it:\n%s", cr.Summary)
	}
}
