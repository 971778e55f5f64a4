// Package queue carries Railyard's work between processes: webhooks become
// jobs, and workers in any process sharing one Redis claim, run and ack them.
//
// Delivery is at least once. A claimed job is leased to one consumer; a
// consumer that stops extending its lease (it died, or hangs) loses the job
// to the next consumer after Options.Lease, so no job is stuck forever. A
// job whose processor keeps failing is retried for Options.RetryFor (an
// hour) from its first failure, and one whose holders keep dying for
// Options.MaxDeliveries deliveries; then it goes to a dead-letter stream,
// where it is kept (the newest Options.DeadKept) to be replayed. Jobs may be
// delayed, deduplicated (EnqueueOnce), or added inside a caller's MULTI
// (AddTx) so that a state change and the job it implies commit together.
// On Redis Cluster the job then waits in the repository's outbox, on the
// repository's slot, until Committed (or a sweep) moves it to the stream,
// once (outbox.go).
//
// Why Redis Streams with a consumer group: the group's pending entries list
// (PEL) is a lease table the server already keeps. It records, per job, the
// owning consumer, the delivery count and the time of the last delivery,
// and XAUTOCLAIM takes over entries idle for longer than the lease in one
// atomic step. A lease is therefore nothing but a PEL entry: extending it
// resets its idle time (XCLAIM IDLE 0), releasing it sets the idle time to
// the lease (XCLAIM IDLE lease), and every check-and-change of a lease runs
// in a Lua script that first verifies the entry still belongs to this
// consumer and this delivery. Lists (BLMOVE) would need a second structure
// for deadlines and a sweeper; plain keys with TTLs would need a scan to
// find expired leases. The keep-alive loop and its timing rule are package
// lease's (Lease is a lease.Renewer), as for every other lease Railyard
// holds. All time that matters for atomicity is the Redis
// server's (PEL idle times, TIME in scripts), never a worker's clock.
//
// All keys but the repositories' outboxes share Options.Prefix, whose hash
// tag keeps them on one Redis Cluster slot so the scripts may touch
// several at once.
//
// This package must not know what a job means: Kind, Repo and Data are
// opaque here, and it never logs Data, which may hold user content.
package queue
