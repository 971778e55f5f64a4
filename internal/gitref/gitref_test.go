package gitref

import "testing"

func TestValid(t *testing.T) {
	valid := []string{"main", "release/v2", "feature/ü-umlaut", "v1.2.3", "a.b", "@x", "x@y", "0123abc"}
	invalid := []string{
		"", "@", "my branch", "tab\tbranch", "line\nbreak", "a~1", "a^", "a:b", "a?", "a*", "a[b", `a\b`,
		"a..b", "a@{1}", "a//b", "/a", "a/", "a.", ".hidden", "a/.hidden", "a.lock", "a.lock/b", "nbsp\u00a0name",
	}
	for _, name := range valid {
		if !Valid(name) {
			t.Errorf("Valid(%q) = false, want true", name)
		}
	}
	for _, name := range invalid {
		if Valid(name) {
			t.Errorf("Valid(%q) = true, want false", name)
		}
	}
}
