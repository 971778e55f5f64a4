package config

import (
	"strings"
	"testing"
)

func TestLoadEnvIntakeBudget(t *testing.T) {
	tests := []struct {
		value   string
		want    int64
		problem string
	}{
		{value: "", want: 0}, // the server's DefaultIntakeBudget
		{value: "100", want: 100 << 20},
		{value: " 25 ", want: 25 << 20},
		{value: "1048576", want: 1 << 40},
		{value: "24", problem: `RAILYARD_INTAKE_BUDGET_MIB: "24" is not a whole number of MiB between 25 and 1048576`},
		{value: "1048577", problem: `RAILYARD_INTAKE_BUDGET_MIB: "1048577" is not a whole number of MiB between 25 and 1048576`},
		{value: "64MiB", problem: `RAILYARD_INTAKE_BUDGET_MIB: "64MiB" is not a whole number of MiB between 25 and 1048576`},
		{value: "-1", problem: `RAILYARD_INTAKE_BUDGET_MIB: "-1" is not a whole number of MiB between 25 and 1048576`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			e, err := LoadEnv(lookupIn(withCreds(map[string]string{"RAILYARD_INTAKE_BUDGET_MIB": tt.value})), "")
			switch {
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
				t.Errorf("error %v, want one saying %q", err, tt.problem)
			case tt.problem == "" && (err != nil || e.IntakeBudget != tt.want):
				t.Errorf("IntakeBudget = %d, %v; want %d", e.IntakeBudget, err, tt.want)
			}
		})
	}
}
