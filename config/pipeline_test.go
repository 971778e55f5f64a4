package config

import "testing"

func TestLevelAtLeast(t *testing.T) {
	tests := []struct {
		have, min Level
		want      bool
	}{
		{"admin", "maintain", true},
		{"maintain", "maintain", true},
		{"write", "maintain", false},
		{"read", "triage", false},
		{"triage", "read", true},
		{"", "read", false},
		{"owner", "read", false},
		{"admin", "owner", false}, // an unknown requirement fails closed
	}
	for _, tt := range tests {
		if got := tt.have.AtLeast(tt.min); got != tt.want {
			t.Errorf("%q.AtLeast(%q) = %t, want %t", tt.have, tt.min, got, tt.want)
		}
	}
}

func TestPipelineLookups(t *testing.T) {
	p := specPipeline
	tests := []struct {
		name      string
		stage     string
		wantIndex int
		wantNext  string // "" when there is none
	}{
		{"first", "build", 0, "staging"},
		{"middle", "staging", 1, "prod"},
		{"last", "prod", 2, ""},
		{"unknown", "qa", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Index(tt.stage); got != tt.wantIndex {
				t.Errorf("Index(%q) = %d, want %d", tt.stage, got, tt.wantIndex)
			}
			s, ok := p.Stage(tt.stage)
			if ok != (tt.wantIndex >= 0) || ok && s.Name != tt.stage {
				t.Errorf("Stage(%q) = %v, %t", tt.stage, s, ok)
			}
			next, ok := p.Next(tt.stage)
			if ok != (tt.wantNext != "") || ok && next.Name != tt.wantNext {
				t.Errorf("Next(%q) = %v, %t; want %q", tt.stage, next, ok, tt.wantNext)
			}
		})
	}
	if got := p.First(); got == nil || got.Name != "build" {
		t.Errorf("First() = %v, want build", got)
	}
	if got := (&Pipeline{}).First(); got != nil {
		t.Errorf("First() of an empty pipeline = %v, want nil", got)
	}

	prod, _ := p.Stage("prod")
	if st, ok := prod.Step("terraform"); !ok || !st.Infra {
		t.Errorf("Step(terraform) = %v, %t", st, ok)
	}
	if st, ok := prod.Step("restart"); ok {
		t.Errorf("Step(restart) = %v: restart steps are not deploy steps", st)
	}
}

func TestPipelineRequired(t *testing.T) {
	tests := []struct {
		command, stage string
		want           Level
	}{
		{"rollback", "staging", "write"}, // default
		{"rollback", "prod", "maintain"}, // raised by the stage
		{"stop", "", "maintain"},         // command level
		{"status", "", "write"},          // default
		{"patch", "staging", "maintain"}, // command level above the stage's
		{"cancel", "unknown", "write"},   // no stage entry
		{"promote", "prod", "maintain"},  // stage level above the default
		{"help", "", "write"},
	}
	for _, tt := range tests {
		if got := specPipeline.Required(tt.command, tt.stage); got != tt.want {
			t.Errorf("Required(%q, %q) = %q, want %q", tt.command, tt.stage, got, tt.want)
		}
	}

	// A stage entry lower than the command's level does not lower it.
	p := &Pipeline{Permissions: Permissions{
		Default:  "triage",
		Commands: map[string]Level{"rollback": "admin"},
		Stages:   map[string]Level{"dev": "read"},
	}}
	if got := p.Required("rollback", "dev"); got != "admin" {
		t.Errorf("Required(rollback, dev) = %q, want admin", got)
	}
	if got := p.Required("retry", "dev"); got != "triage" {
		t.Errorf("Required(retry, dev) = %q, want triage", got)
	}
	// /deploy does what a push does: a lower default does not open it,
	// a higher one and commands.deploy apply.
	if got := p.Required("deploy", ""); got != "write" {
		t.Errorf("Required(deploy) under default triage = %q, want write", got)
	}
	if got := (&Pipeline{Permissions: Permissions{Default: "maintain"}}).Required("deploy", ""); got != "maintain" {
		t.Errorf("Required(deploy) under default maintain = %q, want maintain", got)
	}
	if got := (&Pipeline{Permissions: Permissions{Default: "admin", Commands: map[string]Level{"deploy": "triage"}}}).Required("deploy", ""); got != "triage" {
		t.Errorf("Required(deploy) with commands.deploy triage = %q, want triage", got)
	}
	if got := (&Pipeline{}).Required("retry", ""); got != "write" {
		t.Errorf("Required on a zero Pipeline = %q, want write", got)
	}
}
