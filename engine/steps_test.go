package engine

import (
	"testing"
)

// TestOperationsRunTheirSteps: package stagejob picks the steps and the
// infra rule by the operation's name, so the engine's names must reach it
// as its rules know them.
func TestOperationsRunTheirSteps(t *testing.T) {
	for _, c := range []struct {
		name string
		op   func(w *world) (Result, error)
		want []string
	}{
		{"rollback skips infra", func(w *world) (Result, error) {
			return w.e.Rollback(w.ctx, w.req(), Move{Stage: "prod", SHA: shaA})
		}, []string{"prod:deploy:aaaaaaa:rollback"}},
		{"roll forward skips infra", func(w *world) (Result, error) {
			return w.e.RollForward(w.ctx, w.req(), Move{Stage: "prod", SHA: shaC})
		}, []string{"prod:deploy:ccccccc:rollforward"}},
		{"infra=true runs it", func(w *world) (Result, error) {
			return w.e.Rollback(w.ctx, w.req(), Move{Stage: "prod", SHA: shaA, Infra: true})
		}, []string{"prod:terraform:aaaaaaa:rollback", "prod:deploy:aaaaaaa:rollback"}},
		{"restart runs the restart steps", func(w *world) (Result, error) {
			return w.e.Restart(w.ctx, w.req(), "staging")
		}, []string{"staging:restart:bbbbbbb:restart"}},
		{"shutdown runs the shutdown steps", func(w *world) (Result, error) {
			return w.e.Shutdown(w.ctx, w.req(), "prod")
		}, []string{"prod:stop:bbbbbbb:shutdown"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			p := settled()
			// prod runs B after A, and C is built: prod can go back and forward.
			prod := p.Stage("prod")
			prod.Current, prod.Good, prod.Job.SHA = shaB, []string{shaB, shaA}, shaB
			p.Built = []string{shaC, shaB, shaA}
			w.seed(p)
			if _, err := c.op(w); err != nil {
				t.Fatal(err)
			}
			w.runQueued()
			w.expectSteps(c.want...)
		})
	}
}
