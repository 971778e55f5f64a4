// Package gitref holds git's rule for the name of a branch or tag (git
// check-ref-format), so that the pipeline file's branch and a command's
// to= are refused for the same reasons.
package gitref

import (
	"strings"
	"unicode"
)

// Valid reports whether name, without refs/heads/ or refs/tags/, can name
// a branch or tag: git refuses spaces and control characters, any of
// ~^:?*[\, "..", "@{", "//", a leading or trailing "/", a trailing ".",
// a part that starts with "." or ends in ".lock", and "@" alone.
func Valid(name string) bool {
	if name == "" || name == "@" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") ||
		strings.HasSuffix(name, ".") ||
		strings.ContainsFunc(name, unicode.IsSpace) || strings.ContainsFunc(name, unicode.IsControl) ||
		strings.ContainsAny(name, `~^:?*[\`) {
		return false
	}
	for _, bad := range []string{"..", "@{", "//"} {
		if strings.Contains(name, bad) {
			return false
		}
	}
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}
