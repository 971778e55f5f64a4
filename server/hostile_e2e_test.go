package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/railyard/railyard/config"
)

// TestAliasBombFailsConfigCheck: a small pipeline file whose aliases stand
// for more nodes than Railyard expands is refused on every path that reads
// it, with a railyard/config check run that says why, and deploys nothing.
func TestAliasBombFailsConfigCheck(t *testing.T) {
	var b strings.Builder
	b.WriteString("stages:\n  - name: build\n    steps:\n")
	b.WriteString("      - {name: s0, run: make, env: &env {REGION: eu, TIER: web, LOG: debug, TEAM: core}}\n")
	for i := 1; i <= config.MaxAliasNodes/9+1; i++ {
		fmt.Fprintf(&b, "      - {name: s%d, run: make, env: *env}\n", i)
	}
	h := newHarness(t, b.String())

	sha := h.commitAndPush()
	cr := h.awaitCheckRun("railyard/config", sha, "failure")
	if want := fmt.Sprintf("YAML aliases expand to more than %d nodes", config.MaxAliasNodes); !strings.Contains(cr.Summary, want) {
		t.Errorf("config check run does not say why:\n%s", cr.Summary)
	}
	if reply := h.ask(user, "/promote build").reply; !strings.Contains(reply, "has 1 problems (see the railyard/config check run)") {
		t.Errorf("command on the refused file: reply %q", reply)
	}
	if n := len(h.deployments("build")); n != 0 {
		t.Errorf("the refused file deployed %d times", n)
	}
}
