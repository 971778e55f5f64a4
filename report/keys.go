package report

import (
	"slices"
	"strconv"
	"strings"

	"github.com/railyard/railyard/store"
)

// globalKeys are the keys all repositories share. Tests give each
// Reporter its own namespace, as they share one Redis.
type globalKeys struct {
	ns string
	// ready is the sorted set of repositories with queued status writes,
	// scored by when (Unix ms) their outbox may be sent next; readyTalk
	// the same for conversation.
	ready, readyTalk string
	// marked and markedTalk index the repositories whose outbox of that
	// class is about to get writes (store.Pending): marked before the
	// push, since the push's transaction cannot reach a global key on
	// Redis Cluster.
	marked, markedTalk string
}

func newGlobalKeys(ns string) globalKeys {
	return globalKeys{ns: ns, ready: store.GlobalKey(ns, "ready"), readyTalk: store.GlobalKey(ns, "ready", "conversation"),
		marked: store.GlobalKey(ns, "marked"), markedTalk: store.GlobalKey(ns, "marked", "conversation")}
}

// markedSet is the index of a class's outboxes about to get writes.
func (g globalKeys) markedSet(c class) string {
	if c == conversation {
		return g.markedTalk
	}
	return g.marked
}

// readySet is the ready set of a class's outboxes.
func (g globalKeys) readySet(c class) string {
	if c == conversation {
		return g.readyTalk
	}
	return g.ready
}

// repoKeys are one repository's keys; they share its hash tag, so the
// scripts below touch one slot.
type repoKeys struct {
	class  class
	member string // in the class's ready set: lower-case "owner/name"
	outbox string // list of JSON operations, oldest first
	// legacyIDs is the hash of entries that earlier versions kept for ever;
	// it is still read, and expires (see popScript).
	legacyIDs string
	// legacyOutput is the hash of outputs earlier versions kept, which
	// expired only whole; it is still read, and emptied as outputs change.
	legacyOutput string
	lease        string // the outbox lease of the process sending the outbox (package lease)
	attempts     string // failed attempts of the head operation, for backoff
	// tried names the head operation once a request for it has been made,
	// and when: a later attempt must first look for what that request may
	// have created.
	tried string
}

func keysFor(repo Repo, c class) repoKeys { return keysOf(strings.ToLower(repo.FullName()), c) }

// keysOf names the keys of a repository's outbox of class c. The status
// outbox keeps the names of the single outbox of earlier versions, so
// what they queued (conversation too) is still sent.
func keysOf(member string, c class) repoKeys {
	box := []string{"outbox"}
	if c == conversation {
		box = append(box, string(conversation))
	}
	sub := func(s string) []string { return append(slices.Clip(box), s) }
	return repoKeys{
		class:        c,
		member:       member,
		outbox:       store.RepoKey(member, box...),
		legacyIDs:    store.RepoKey(member, "ghid"),
		legacyOutput: store.RepoKey(member, "ghoutput"),
		lease:        store.RepoKey(member, sub("lease")...),
		attempts:     store.RepoKey(member, sub("attempts")...),
		tried:        store.RepoKey(member, sub("tried")...),
	}
}

// object is the key of what Railyard knows of one object it creates on
// GitHub (a JSON entry), named by its field ("checkrun:KEY"). One key per
// object, rather than one hash per repository, so that each expires on its
// own: see idTTL.
func (k repoKeys) object(field string) string {
	return store.RepoKey(k.member, "ghid", field)
}

// paceLog is the log of the times of an installation's requests of class
// c, its sliding pacing windows.
func (g globalKeys) paceLog(installationID int64, c class) string {
	return store.GlobalKey(g.ns, "pace", strconv.FormatInt(installationID, 10), "log", string(c))
}

// delay records since when an installation's writes of class c wait, until
// when and why (see delayLua).
func (g globalKeys) delay(installationID int64, c class) string {
	return store.GlobalKey(g.ns, "pace", strconv.FormatInt(installationID, 10), "delay", string(c))
}

// turn is the lease of the process whose turn it is to send an
// installation's status writes.
func (g globalKeys) turn(installationID int64) string {
	return store.GlobalKey(g.ns, "pace", strconv.FormatInt(installationID, 10), "turn")
}

// hold is until when (Unix ms) and why GitHub asked an installation's
// writes of class c to wait: "<ms> <reason>".
func (g globalKeys) hold(installationID int64, c class) string {
	return store.GlobalKey(g.ns, "pace", strconv.FormatInt(installationID, 10), "hold", string(c))
}

// output is the key of the output GitHub shows for one check run (JSON),
// named by its field, kept until the check run completes: one key per
// check run, so that each expires on its own (outputTTL).
func (k repoKeys) output(field string) string {
	return store.RepoKey(k.member, "ghoutput", field)
}

func checkRunField(key string) string   { return "checkrun:" + key }
func deploymentField(key string) string { return "deployment:" + key }
