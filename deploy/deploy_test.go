// Package deploy_test checks what ships the bot — the Dockerfile, its
// .dockerignore, the Kubernetes example and the README's docker run — against
// the bot's code: the variables package config reads, the endpoints the server
// answers, the default listen address and where .env is written.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/server"
)

const (
	kubernetesFile = "kubernetes/railyard.yaml"
	dockerfile     = "../Dockerfile"
	dockerignore   = "../.dockerignore"
	readme         = "../README.md"
)

// yamlDocuments returns each document of a multi-document YAML file as JSON,
// so the checks below decode it into plain structs. It is the only code here
// that knows a YAML module.
func yamlDocuments(data []byte) ([][]byte, error) {
	var out [][]byte
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, js)
	}
}

// The parts of the Kubernetes objects the checks read; JSON matches field
// names case-insensitively, so only differing names carry tags.
type (
	object struct {
		Kind       string
		Metadata   struct{ Name string }
		StringData map[string]string `json:"stringData"`
	}
	deployment struct {
		Spec struct {
			Template struct {
				Metadata struct{ Labels map[string]string }
				Spec     podSpec
			}
		}
	}
	podSpec struct {
		SecurityContext securityContext `json:"securityContext"`
		Containers      []container
		Volumes         []volume
	}
	securityContext struct {
		RunAsNonRoot             *bool  `json:"runAsNonRoot"`
		RunAsUser                *int64 `json:"runAsUser"`
		RunAsGroup               *int64 `json:"runAsGroup"`
		FSGroup                  *int64 `json:"fsGroup"`
		ReadOnlyRootFilesystem   *bool  `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation"`
		Privileged               *bool
		Capabilities             struct{ Drop []string }
	}
	container struct {
		Name  string
		Ports []struct {
			Name          string
			ContainerPort int `json:"containerPort"`
		}
		Env []struct {
			Name, Value string
			ValueFrom   *struct {
				SecretKeyRef *struct{ Name, Key string } `json:"secretKeyRef"`
			} `json:"valueFrom"`
		}
		LivenessProbe   *probe          `json:"livenessProbe"`
		ReadinessProbe  *probe          `json:"readinessProbe"`
		SecurityContext securityContext `json:"securityContext"`
		VolumeMounts    []struct {
			Name      string
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string
			Port any // a number or a port's name
		} `json:"httpGet"`
	}
	volume struct {
		Name     string
		EmptyDir *struct{} `json:"emptyDir"`
		Secret   *struct {
			SecretName  string `json:"secretName"`
			Items       []struct{ Key, Path string }
			DefaultMode *int `json:"defaultMode"`
		}
	}
	service struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct {
				Port       int
				TargetPort any `json:"targetPort"`
			}
		}
	}
)

// kube is the example, one object of each kind.
type kube struct {
	secret  object
	deploy  deployment
	pod     podSpec
	bot     container
	service service
}

func loadKube(t *testing.T) kube {
	t.Helper()
	data, err := os.ReadFile(kubernetesFile)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := yamlDocuments(data)
	if err != nil {
		t.Fatalf("%s: %v", kubernetesFile, err)
	}
	var k kube
	seen := map[string]int{}
	for _, js := range docs {
		var o object
		decode(t, js, &o)
		seen[o.Kind]++
		switch o.Kind {
		case "Secret":
			k.secret = o
		case "Deployment":
			decode(t, js, &k.deploy)
		case "Service":
			decode(t, js, &k.service)
		}
	}
	if want := map[string]int{"Secret": 1, "Deployment": 1, "Service": 1}; !equalCounts(seen, want) {
		t.Fatalf("%s holds %v, want one Secret, Deployment and Service", kubernetesFile, seen)
	}
	k.pod = k.deploy.Spec.Template.Spec
	if len(k.pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(k.pod.Containers))
	}
	k.bot = k.pod.Containers[0]
	return k
}

func decode(t *testing.T, js []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(js, v); err != nil {
		t.Fatalf("%s: %v", kubernetesFile, err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// literal returns the plain value the container sets for name.
func (k kube) literal(name string) (string, bool) {
	for _, e := range k.bot.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// port resolves a probe's or the Service's port, by number or by name.
func (k kube) port(t *testing.T, p any) int {
	t.Helper()
	switch p := p.(type) {
	case float64:
		return int(p)
	case string:
		for _, cp := range k.bot.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	t.Fatalf("port %v names none of the container's ports", p)
	return 0
}

// mountOf returns the volume mounted on dir or on a parent of it.
func (k kube) mountOf(dir string) (volume, string, bool) {
	dir = path.Clean(dir)
	for _, m := range k.bot.VolumeMounts {
		if dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for _, v := range k.pod.Volumes {
				if v.Name == m.Name {
					return v, m.MountPath, true
				}
			}
		}
	}
	return volume{}, "", false
}

// configVariables are the variables package config reads, found by asking it.
func configVariables(t *testing.T) map[string]bool {
	t.Helper()
	read := map[string]bool{}
	if _, err := config.LoadEnv(func(k string) (string, bool) { read[k] = true; return "", false }, ""); err != nil {
		t.Fatalf("LoadEnv with nothing set: %v", err)
	}
	return read
}

// listenPort is the port the bot listens on, given the container's settings.
func listenPort(t *testing.T, k kube) int {
	t.Helper()
	vars := map[string]string{}
	if v, ok := k.literal("RAILYARD_ADDR"); ok {
		vars["RAILYARD_ADDR"] = v
	}
	env, err := config.LoadEnv(func(key string) (string, bool) { v, ok := vars[key]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestKubernetesSecurity(t *testing.T) {
	k := loadKube(t)
	pod, c := k.pod.SecurityContext, k.bot.SecurityContext
	user := dockerUser(t)
	check := func(what string, ok bool) {
		if !ok {
			t.Errorf("the container does not %s", what)
		}
	}
	check("run as non-root", isTrue(c.RunAsNonRoot) || (c.RunAsNonRoot == nil && isTrue(pod.RunAsNonRoot)))
	uid := cmpPtr(c.RunAsUser, pod.RunAsUser)
	check("run as the Dockerfile's user "+strconv.FormatInt(user.uid, 10), uid != nil && *uid == user.uid)
	if gid := cmpPtr(c.RunAsGroup, pod.RunAsGroup); user.gid >= 0 {
		check("run with the Dockerfile's group "+strconv.FormatInt(user.gid, 10), gid != nil && *gid == user.gid)
	}
	check("have a read-only root filesystem", isTrue(c.ReadOnlyRootFilesystem))
	check("forbid privilege escalation", c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation)
	check("stay unprivileged", c.Privileged == nil || !*c.Privileged)
	check("drop ALL capabilities", slices.Contains(c.Capabilities.Drop, "ALL"))

	// With a read-only root, the work directory must be an emptyDir.
	workdir, ok := k.literal("RAILYARD_WORKDIR")
	if !ok {
		workdir = dockerEnv(t, "RAILYARD_WORKDIR")
	}
	v, at, ok := k.mountOf(workdir)
	if !ok || v.EmptyDir == nil {
		t.Errorf("RAILYARD_WORKDIR %s is not on an emptyDir volume (mounted at %q)", workdir, at)
	}
}

func TestKubernetesConfiguration(t *testing.T) {
	k := loadKube(t)
	known := configVariables(t)
	for _, e := range k.bot.Env {
		if !known[e.Name] {
			t.Errorf("the container sets %s, which the bot does not read", e.Name)
		}
	}

	// Credentials and the Redis URL come from the Secret, never as literals.
	fromSecret := func(name string) {
		t.Helper()
		for _, e := range k.bot.Env {
			if e.Name != name {
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s is not taken from a Secret", name)
				return
			}
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := k.secret.StringData[ref.Key]; ref.Name != k.secret.Metadata.Name || !ok {
				t.Errorf("%s refers to %s/%s, which the Secret %s does not hold", name, ref.Name, ref.Key, k.secret.Metadata.Name)
			}
			return
		}
		t.Errorf("the container does not set %s", name)
	}
	fromSecret("GITHUB_APP_INTEGRATION_ID")
	fromSecret("GITHUB_APP_WEBHOOK_SECRET")
	fromSecret("RAILYARD_REDIS_URL")
	if _, ok := k.literal("GITHUB_APP_PRIVATE_KEY"); ok {
		t.Error("the private key is a literal; want it mounted as a file")
	}

	// The private key is a file from the same Secret, readable by the bot.
	keyFile, ok := k.literal("GITHUB_APP_PRIVATE_KEY_FILE")
	if !ok {
		t.Fatal("the container does not set GITHUB_APP_PRIVATE_KEY_FILE")
	}
	v, at, ok := k.mountOf(keyFile)
	if !ok || v.Secret == nil || v.Secret.SecretName != k.secret.Metadata.Name {
		t.Fatalf("GITHUB_APP_PRIVATE_KEY_FILE %s is not on a volume of the Secret %s", keyFile, k.secret.Metadata.Name)
	}
	rel := strings.TrimPrefix(keyFile, strings.TrimSuffix(at, "/")+"/")
	var key string
	for _, it := range v.Secret.Items {
		if it.Path == rel {
			key = it.Key
		}
	}
	if _, ok := k.secret.StringData[key]; key == "" || !ok {
		t.Errorf("%s is no item of the Secret's volume, or its key %q is not in the Secret", keyFile, key)
	}
	// Secret files belong to root; the bot reads the key through fsGroup.
	mode := v.Secret.DefaultMode
	if mode == nil || *mode&0o040 == 0 || k.pod.SecurityContext.FSGroup == nil {
		t.Errorf("the key volume's defaultMode %v with fsGroup %v: want it readable by the bot's group", mode, k.pod.SecurityContext.FSGroup)
	}
}

// The probes name endpoints the bot answers, on the port it listens on, and
// the Service reaches that port.
func TestKubernetesProbesAndService(t *testing.T) {
	k := loadKube(t)
	port := listenPort(t, k)
	if !slices.ContainsFunc(k.bot.Ports, func(p struct {
		Name          string
		ContainerPort int `json:"containerPort"`
	}) bool {
		return p.ContainerPort == port
	}) {
		t.Errorf("container ports %v, want %d, where the bot listens", k.bot.Ports, port)
	}
	if exposed := dockerExpose(t); exposed != port {
		t.Errorf("the Dockerfile exposes %d, want %d", exposed, port)
	}

	handler := botHandler(t)
	for _, p := range []struct {
		name, wantPath string
		probe          *probe
	}{
		{"liveness", "/healthz", k.bot.LivenessProbe},
		{"readiness", "/readyz", k.bot.ReadinessProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.wantPath {
			t.Errorf("%s probe path %s, want %s", p.name, p.probe.HTTPGet.Path, p.wantPath)
		}
		if got := k.port(t, p.probe.HTTPGet.Port); got != port {
			t.Errorf("%s probe port %d, want %d", p.name, got, port)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", p.probe.HTTPGet.Path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s probe: the bot answers GET %s with %d, want 200", p.name, p.probe.HTTPGet.Path, rec.Code)
		}
	}

	labels := k.deploy.Spec.Template.Metadata.Labels
	for key, v := range k.service.Spec.Selector {
		if labels[key] != v {
			t.Errorf("the Service selects %s=%s, which the pods do not carry", key, v)
		}
	}
	if len(k.service.Spec.Selector) == 0 || len(k.service.Spec.Ports) == 0 {
		t.Fatal("the Service selects nothing or has no port")
	}
	for _, p := range k.service.Spec.Ports {
		if got := k.port(t, p.TargetPort); got != port {
			t.Errorf("the Service targets port %d, want %d", got, port)
		}
	}
}

// botHandler is the bot's HTTP handler as production wires it, on the
// embedded store.
func botHandler(t *testing.T) http.Handler {
	t.Helper()
	gh := githubtest.New(t)
	env := config.Env{
		V3APIURL: gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: "secret",
		PrivateKey: gh.PrivateKeyPEM(), WorkDir: t.TempDir(), Workers: 1,
		// No step runs here, and the test's temporary directory is closed
		// to the step user that isolation would check it against.
		StepIsolationOff: true,
	}
	srv, err := server.New(t.Context(), env, zerolog.Nop(), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Started, as in the pod: readiness needs the queues it creates.
	stop, err := srv.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); srv.Close() })
	return srv.Handler()
}

// Dockerfile checks.

// runtimeStage returns the instructions of the Dockerfile's last stage, the
// image that runs, with continuation lines joined.
func runtimeStage(t *testing.T) [][2]string {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		instr, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			out = nil
		}
		out = append(out, [2]string{instr, strings.TrimSpace(args)})
	}
	return out
}

func dockerInstr(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, in := range runtimeStage(t) {
		if in[0] == name {
			out = append(out, in[1])
		}
	}
	return out
}

type uidGID struct{ uid, gid int64 } // gid -1: not given

// dockerUser is the runtime image's USER, which must be numeric so that
// runAsNonRoot can check it.
func dockerUser(t *testing.T) uidGID {
	t.Helper()
	users := dockerInstr(t, "USER")
	if len(users) != 1 {
		t.Fatalf("the runtime image sets USER %d times, want once", len(users))
	}
	u, g, hasGroup := strings.Cut(users[0], ":")
	uid, err := strconv.ParseInt(u, 10, 64)
	if err != nil || uid == 0 {
		t.Fatalf("USER %s: want a numeric user other than root", users[0])
	}
	out := uidGID{uid, -1}
	if hasGroup {
		if out.gid, err = strconv.ParseInt(g, 10, 64); err != nil {
			t.Fatalf("USER %s: want a numeric group", users[0])
		}
	}
	return out
}

func dockerEnv(t *testing.T, name string) string {
	t.Helper()
	for _, args := range dockerInstr(t, "ENV") {
		if v, ok := strings.CutPrefix(args, name+"="); ok {
			return v
		}
	}
	t.Fatalf("the Dockerfile does not set %s", name)
	return ""
}

func dockerExpose(t *testing.T) int {
	t.Helper()
	ports := dockerInstr(t, "EXPOSE")
	if len(ports) != 1 {
		t.Fatalf("EXPOSE %q, want one port", ports)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(ports[0], "/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dotenvDir is the directory the bot reads .env from and setup mode writes it
// to, in the container: cmd/bot's dotenvPath, against the image's WORKDIR.
func dotenvDir(t *testing.T) string {
	t.Helper()
	dotenv := config.DotenvPath // what cmd/bot reads and setup mode writes
	if path.IsAbs(dotenv) {
		return path.Dir(dotenv)
	}
	workdirs := dockerInstr(t, "WORKDIR")
	if len(workdirs) == 0 {
		t.Fatal("the runtime image sets no WORKDIR")
	}
	return path.Dir(path.Join(workdirs[len(workdirs)-1], dotenv))
}

// TestDockerKeepsDotenv: the README's docker run mounts a volume on the
// directory setup mode writes .env to, and the image's user owns it.
func TestDockerKeepsDotenv(t *testing.T) {
	dir := dotenvDir(t)
	user := dockerUser(t)
	owned := regexp.MustCompile(`chown (-R )?` + strconv.FormatInt(user.uid, 10) + `(:\d+)? ` + regexp.QuoteMeta(dir) + `(\s|$)`)
	if !slices.ContainsFunc(dockerInstr(t, "RUN"), owned.MatchString) {
		t.Errorf("no RUN in the runtime image gives %s to user %d", dir, user.uid)
	}

	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	volume := regexp.MustCompile(`(?:-v|--volume)[ =]([A-Za-z0-9_.-]+):(/\S*)`)
	var runs int
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(strings.TrimSpace(line), "docker run ") {
			continue
		}
		runs++
		m := volume.FindStringSubmatch(line)
		if m == nil || path.Clean(m[2]) != dir {
			t.Errorf("README: %s\nwant a named volume on %s, where .env is written", strings.TrimSpace(line), dir)
		}
	}
	if runs == 0 {
		t.Error("README has no docker run example")
	}
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "!") {
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	ignored := func(name string) bool {
		// A pattern excludes a path when it matches the path or a parent.
		for p := name; p != "."; p = path.Dir(p) {
			for _, pat := range patterns {
				if ok, _ := path.Match(pat, p); ok {
					return true
				}
				if sub, ok := strings.CutPrefix(pat, "**/"); ok {
					if ok, _ := path.Match(sub, path.Base(p)); ok {
						return true
					}
				}
			}
		}
		return false
	}
	for _, name := range []string{".env", ".git/HEAD", ".railyard/work/x", "cmd/bot/.env", "app.pem"} {
		if !ignored(name) {
			t.Errorf(".dockerignore lets %s into the build context", name)
		}
	}
	for _, name := range []string{"go.mod", "go.sum", "app.yml", "cmd/bot/main.go", "setup/templates/index.html", "statuspage/page.html.tmpl"} {
		if ignored(name) {
			t.Errorf(".dockerignore keeps %s, which the build needs, out of the build context", name)
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// cmpPtr returns the container's setting, else the pod's.
func cmpPtr[T any](container, pod *T) *T {
	if container != nil {
		return container
	}
	return pod
}
