package store

import "strings"

// Keys of one repository carry the hash tag {owner/repo}, so that
// multi-key transactions and scripts stay on one Redis Cluster slot.
// Global keys carry the tag {railyard}.

const prefix = "railyard:"

// RepoKey names a key that belongs to repository "owner/name".
func RepoKey(repo string, parts ...string) string {
	return prefix + "{" + strings.ToLower(repo) + "}:" + strings.Join(parts, ":")
}

// GlobalKey names a key shared by all repositories.
func GlobalKey(parts ...string) string {
	return prefix + "{railyard}:" + strings.Join(parts, ":")
}
