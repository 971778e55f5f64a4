package server

import (
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/railyard/railyard/report"
	"github.com/redis/go-redis/v9"
)

func TestOutboxMetricsByClass(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	queued := time.Now().Add(-90 * time.Second)
	r := report.New(rdb, nil, report.Options{Now: func() time.Time { return queued }})
	repo := report.Repo{InstallationID: 1, Owner: "octo", Name: "app"}
	if err := r.Reaction(t.Context(), repo, 7, "eyes"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP railyard_github_outbox_depth Writes to GitHub not sent yet, by class: conversation (comments, reactions) or status (check runs, deployments).
# TYPE railyard_github_outbox_depth gauge
railyard_github_outbox_depth{class="conversation"} 1
railyard_github_outbox_depth{class="status"} 0
`
	if err := testutil.CollectAndCompare(outboxCollector{r}, strings.NewReader(want), "railyard_github_outbox_depth"); err != nil {
		t.Error(err)
	}
	// The reaction has waited since it was queued; nothing of status waits.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(outboxCollector{r})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "railyard_github_outbox_oldest_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			ages[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if ages["conversation"] < 90 || ages["conversation"] > 120 || ages["status"] != 0 {
		t.Errorf("oldest ages = %v, want about 90 s for conversation and 0 for status", ages)
	}
}
