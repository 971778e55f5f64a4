package queue

import "github.com/redis/go-redis/v9"

// The scripts below work on both Redis 7 and miniredis. Times come from the
// server (TIME, PEL idle times) so that workers' clocks do not matter.

// nowMs is the server's time in milliseconds.
const nowMs = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// enqueueOnceScript adds ARGV[2] to the stream KEYS[2] unless the dedupe key
// KEYS[1] exists; the key then remembers the job's id for ARGV[1] ms.
// Returns {duplicate (0|1), id}.
var enqueueOnceScript = redis.NewScript(`
local seen = redis.call('GET', KEYS[1])
if seen then return {1, seen} end
local id = redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return {0, id}
`)

// delayScript adds job ARGV[2] to the sorted set KEYS[1], due in ARGV[1] ms.
var delayScript = redis.NewScript(nowMs + `
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return 1
`)

// promoteScript moves up to ARGV[1] due jobs from the sorted set KEYS[1]
// into the stream KEYS[2]. Returns the ms until the next delayed job is due,
// or -1 when none is left.
var promoteScript = redis.NewScript(nowMs + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then return -1 end
return math.max(0, tonumber(next[2]) - now)
`)

// reclaimScript gives consumer ARGV[2] of group ARGV[1] the oldest entry of
// stream KEYS[1] idle for at least ARGV[3] ms. XAUTOCLAIM does not report
// the delivery count, so the script reads it from the PEL in the same step.
// Returns {id, fields, deliveries} or nil.
var reclaimScript = redis.NewScript(`
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1)
  cursor = r[1]
  local e = r[2][1]
  if e then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    return {e[1], e[2], p[1][4]}
  end
until cursor == '0-0'
return false
`)

// owned starts every lease script: KEYS[1] is the stream, ARGV[1] the group,
// ARGV[2] the consumer, ARGV[3] the entry id and ARGV[4] the delivery count
// the lease was handed out with. The count tells this lease apart from a
// later one of the same consumer for the same entry. Returns 0 if not owned.
const owned = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] or p[1][4] ~= tonumber(ARGV[4]) then return 0 end
`

// renewScript sets the lease's idle time to ARGV[5] ms: 0 extends it, the
// lease length hands it back. RETRYCOUNT keeps the delivery count as it is.
var renewScript = redis.NewScript(owned + `
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'RETRYCOUNT', ARGV[4], 'JUSTID')
return 1
`)

const finish = `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
`

// ackScript removes the entry for good.
var ackScript = redis.NewScript(owned + finish)

// retryScript removes the entry and adds job ARGV[6] to the sorted set
// KEYS[2], due in ARGV[5] ms.
var retryScript = redis.NewScript(owned + nowMs + `
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[6])
` + finish)

// buryScript moves the entry to the dead-letter stream KEYS[2] as job
// ARGV[5], keeping the newest ARGV[6] entries there, and deletes the job's dedupe key KEYS[3] if it has one, so that
// the same delivery sent again is taken rather than refused as seen.
var buryScript = redis.NewScript(owned + `
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], '*', 'id', ARGV[3], 'job', ARGV[5])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
` + finish)

// replayScript moves the dead-letter entry ARGV[1] of stream KEYS[1] back to
// the job stream KEYS[2] as job ARGV[2]. Returns the new id, or nil when the
// entry is gone.
var replayScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)
