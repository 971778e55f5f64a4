package ghname

import "testing"

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"octo": true, "app.js": true, "my_repo-2": true, ".github": true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "ü": false, `a\b`: false, "a%2Fb": false,
	} {
		if got := Valid(name); got != want {
			t.Errorf("Valid(%q) = %t, want %t", name, got, want)
		}
	}
}
