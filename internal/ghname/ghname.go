// Package ghname holds what a GitHub owner or repository name may be, so
// that the workspace, which makes folders of them, and the status pages,
// which take them from a URL, accept the same names.
package ghname

import "regexp"

var pattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Valid reports whether s can be a GitHub owner or repository name: ASCII
// letters, digits, "_", "." and "-", and neither "." nor "..", so that it
// is always one path element.
func Valid(s string) bool {
	return pattern.MatchString(s) && s != "." && s != ".."
}
