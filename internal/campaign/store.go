package campaign

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The campaign store: every Redis key of this package, the fields of a
// campaign's record, and every Lua script with the one function that runs
// it. Other files run no script; they call these functions. The scripts
// spell no state or field name: those are Go constants (the states in
// meta.go, the counts' fields in counts.go, the record's fields below),
// put before each script once, as Lua locals (luaNames).

// Prefix starts every key of this package.
const Prefix = "recallq"

// indexKey is the SET of every campaign's name.
const indexKey = Prefix + ":campaigns"

// activeKey is the SET of the campaigns that are neither done nor
// cancelled, and of the cancelled ones with tasks left in their window
// (being called when cancel stopped waiting for them, or a dead letter run
// again by hand): the feeder looks only at these, so finished
// campaigns cost nothing however many accumulate. An import that reopens a
// done campaign adds it back (after the push that reopened it), as does a
// dead letter run again (recordScript); whoever takes a campaign out reads
// it again after (leaveActive).
const activeKey = Prefix + ":campaigns:active"

// keys names one campaign's keys. All of them share the hash tag
// {camp:NAME}, so one Lua script may touch any of them on Redis Cluster.
type keys struct {
	meta, counts, backlog, window, retrying, parked, dead, op string
	deadIDs, reruns, rates                                    string
}

// recordKeys are the KEYS of recordScript.
func (k keys) recordKeys() []string {
	return []string{k.counts, k.window, k.retrying, k.dead, k.deadIDs, k.meta, k.reruns}
}

func keysFor(name string) keys {
	base := Prefix + ":{camp:" + name + "}:"
	return keys{
		meta:     base + "meta",
		counts:   base + "counts",
		backlog:  base + "backlog",
		window:   base + "window",
		retrying: base + "retrying",
		parked:   base + "parked",
		dead:     base + "dead",
		op:       base + "op",
		deadIDs:  base + "dead_ids",
		reruns:   base + "reruns",
		rates:    base + "rates",
	}
}

// feedKeys names the keys of one app's feeder.
type feedKeys struct{ lock, rate string }

func feedKeysFor(sdkAppID uint64) feedKeys {
	base := Prefix + ":{feed:" + strconv.FormatUint(sdkAppID, 10) + "}:"
	return feedKeys{lock: base + "lock", rate: base + "rate"}
}

// asynq's Redis keys that recallq reads directly (asynq v0.26's layout,
// pinned by the tests against a real Redis): a task's hash, whose field
// asynqStateField is its state, the marker of a paused queue, and the LIST
// of a queue's pending task IDs, newest at the head (index 0; workers take
// from the tail). A pending task's hash has the field
// asynqPendingSinceField when enqueuing or a retry or schedule come due put
// it there, and not when asynq's RunTask did (asynqmon's Run, `asynq task
// run`, a worker putting back a kept task on its last attempt), nor a
// worker's stop that puts back a task it had taken (at the tail).
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }
func asynqPausedKey(queue string) string   { return "asynq:{" + queue + "}:paused" }
func asynqPendingKey(queue string) string  { return "asynq:{" + queue + "}:pending" }

const (
	asynqStateField        = "state"
	asynqPendingSinceField = "pending_since"
)

// The fields of a campaign's record (keys.meta).
const (
	metaName        = "name"
	metaSDKAppID    = "sdkappid"
	metaCreated     = "created"
	metaSource      = "source"
	metaFormat      = "format"
	metaState       = "state"
	metaRequestedBy = "requested_by"
	metaReason      = "reason"
	metaImportRows  = "import_rows"
	metaImportLine  = "import_line"
	metaImportCRC   = "import_crc"
	metaImportDone  = "import_done"
	metaRejected    = "rejected"
	metaFed         = "fed"
	metaFeeding     = "feeding"
	metaImported    = "imported"
	metaFinished    = "finished"
	metaAudit       = "audit"
)

// metaFields is what readMeta reads, in the order parseMeta expects.
var metaFields = []string{metaName, metaSDKAppID, metaCreated, metaSource, metaFormat, metaState, metaRequestedBy, metaReason,
	metaImportRows, metaImportLine, metaImportCRC, metaImportDone, metaRejected, metaFed, metaFeeding, metaImported, metaFinished, metaAudit}

// auditIndexed is the record's audit field of a campaign whose dead letters
// are indexed in dead_ids (every campaign created since the index exists).
const auditIndexed = 2

// luaNames is put before every script: the names the scripts use, as Lua
// locals.
var luaNames = luaLocals(
	"STATE_RUNNING", string(StateRunning),
	"STATE_CANCELLED", string(StateCancelled),
	"STATE_DONE", string(StateDone),
	"M_NAME", metaName, "M_SDKAPPID", metaSDKAppID, "M_CREATED", metaCreated,
	"M_SOURCE", metaSource, "M_FORMAT", metaFormat, "M_STATE", metaState,
	"M_REQUESTED_BY", metaRequestedBy, "M_REASON", metaReason,
	"M_IMPORT_ROWS", metaImportRows, "M_IMPORT_LINE", metaImportLine, "M_IMPORT_CRC", metaImportCRC,
	"M_IMPORT_DONE", metaImportDone, "M_REJECTED", metaRejected, "M_FED", metaFed,
	"M_FEEDING", metaFeeding, "M_IMPORTED", metaImported, "M_FINISHED", metaFinished, "M_AUDIT", metaAudit,
	"C_DEAD_LETTERED", fieldDeadLettered, "C_DEAD_PREFIX", fieldDeadPrefix,
	"C_DUPLICATES", fieldDuplicates, "C_CANCELLED", fieldCancelled, "C_UNACCOUNTED", fieldUnaccounted,
	"RECORD_RETRYING", recordRetrying,
	"ANSWER_OK", answerOK, "ANSWER_STATE", answerState, "ANSWER_MOVED", answerMoved,
) + "local AUDIT_INDEXED = " + strconv.Itoa(auditIndexed) + "\n"

// luaLocals declares each name, value pair as a Lua local string.
func luaLocals(kv ...string) string {
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		if strings.ContainsFunc(v, func(r rune) bool { return r != '_' && r != ':' && (r < 'a' || r > 'z') }) {
			panic("campaign: a store name must be lower case letters, '_' and ':': " + v)
		}
		fmt.Fprintf(&b, "local %s = '%s'\n", kv[i], v)
	}
	return b.String()
}

// newScript is a campaign script: body after luaNames.
func newScript(body string) *redis.Script { return redis.NewScript(luaNames + body) }

// createScript creates a campaign's record unless it exists. KEYS: meta.
// ARGV: name, sdkappid, created, source, format, requested_by, reason.
// Returns 1 when it created the record.
var createScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], M_NAME, ARGV[1], M_SDKAPPID, ARGV[2], M_CREATED, ARGV[3], M_SOURCE, ARGV[4],
  M_FORMAT, ARGV[5], M_REQUESTED_BY, ARGV[6], M_REASON, ARGV[7], M_STATE, STATE_RUNNING,
  M_IMPORT_ROWS, 0, M_IMPORT_LINE, 0, M_IMPORT_CRC, 0, M_IMPORT_DONE, 0, M_REJECTED, 0, M_AUDIT, AUDIT_INDEXED)
return 1
`)

// createMeta creates the campaign's record unless it exists, and reports
// whether it did.
func createMeta(ctx context.Context, rdb redis.UniversalClient, k keys, name string, sdkAppID uint64, created time.Time,
	source string, format Format, requestedBy, reason string) (bool, error) {
	v, err := createScript.Run(ctx, rdb, []string{k.meta},
		name, sdkAppID, created.UTC().Format(time.RFC3339), source, string(format), requestedBy, reason).Int()
	return v == 1, err
}

// The status words that importBatchScript, importDoneScript and
// claimScript answer with: {status, detail...}.
const (
	answerOK    = "ok"    // done
	answerState = "state" // the campaign's state does not allow it; import: detail is the state
	answerMoved = "moved" // import: another import moved the checkpoint; detail is import_rows
)

// importBatchScript appends a batch to the backlog and moves the
// checkpoint, if the checkpoint is where this importer left it (else
// another import of the campaign is running) and the campaign is not
// cancelled.
//
// Rows pushed reopen the import: import_done goes back to 0 until the
// importer's importDoneScript, so doneScript (the same keys, so never
// interleaved with this) cannot mark the campaign done between two
// batches; and a done campaign (rows appended to its file and the same
// `campaign start` run again) is running again, so the feeder feeds the
// new rows. Its detail is then STATE_DONE: the caller must put the
// campaign back in the active set (another hash slot, so not here).
//
// KEYS: meta, backlog. ARGV: expected import_rows, new import_rows,
// import_line, import_crc, rejected, rows...
var importBatchScript = newScript(`
local m = redis.call('HMGET', KEYS[1], M_STATE, M_IMPORT_ROWS)
if m[1] == false or m[1] == STATE_CANCELLED then return {ANSWER_STATE, tostring(m[1])} end
if m[2] ~= ARGV[1] then return {ANSWER_MOVED, tostring(m[2])} end
for i = 6, #ARGV, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[1], M_IMPORT_ROWS, ARGV[2], M_IMPORT_LINE, ARGV[3], M_IMPORT_CRC, ARGV[4], M_REJECTED, ARGV[5])
if #ARGV < 6 then return {ANSWER_OK, ''} end
redis.call('HSET', KEYS[1], M_IMPORT_DONE, 0)
if m[1] ~= STATE_DONE then return {ANSWER_OK, ''} end
redis.call('HSET', KEYS[1], M_STATE, STATE_RUNNING)
redis.call('HDEL', KEYS[1], M_FINISHED)
return {ANSWER_OK, STATE_DONE}
`)

// pushImportBatch appends rows to the backlog and moves the checkpoint
// from rows to next; it answers {status, detail} (answerOK ...; with
// answerOK, detail is StateDone when the push reopened a done campaign).
func pushImportBatch(ctx context.Context, rdb redis.UniversalClient, k keys, rows, next int64, lastLine int, crc uint32,
	rejected int64, batch []any) ([]string, error) {
	args := append([]any{rows, next, lastLine, crc, rejected}, batch...)
	return importBatchScript.Run(ctx, rdb, []string{k.meta, k.backlog}, args...).StringSlice()
}

// importDoneScript marks the import complete. KEYS: meta. ARGV: expected
// import_rows, rejected, time.
var importDoneScript = newScript(`
local m = redis.call('HMGET', KEYS[1], M_STATE, M_IMPORT_ROWS)
if m[1] == false or m[1] == STATE_CANCELLED then return {ANSWER_STATE, tostring(m[1])} end
if m[2] ~= ARGV[1] then return {ANSWER_MOVED, tostring(m[2])} end
redis.call('HSET', KEYS[1], M_IMPORT_DONE, 1, M_REJECTED, ARGV[2], M_IMPORTED, ARGV[3])
return {ANSWER_OK, ''}
`)

// finishImport marks the import complete if the checkpoint is at rows; it
// answers {status, detail} (answerOK ...).
func finishImport(ctx context.Context, rdb redis.UniversalClient, k keys, rows, rejected int64, at time.Time) ([]string, error) {
	return importDoneScript.Run(ctx, rdb, []string{k.meta}, rows, rejected, at.UTC().Format(time.RFC3339)).StringSlice()
}

var renewScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

var unlockScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// renewLock extends the lock if token still holds it.
func renewLock(ctx context.Context, rdb redis.UniversalClient, key, token string, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, rdb, []string{key}, token, ttl.Milliseconds()).Int()
	return n == 1, err
}

// unlock releases the lock if token holds it (best effort, its own timeout).
func unlock(rdb redis.UniversalClient, key, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = unlockScript.Run(ctx, rdb, []string{key}, token).Err()
}

// setStateScript moves a campaign from one of the states in ARGV[2..] to
// ARGV[1]. Returns {moved (0/1), previous state}.
var setStateScript = newScript(`
local cur = redis.call('HGET', KEYS[1], M_STATE)
if not cur then return {0, ''} end
for i = 2, #ARGV do
  if cur == ARGV[i] then
    redis.call('HSET', KEYS[1], M_STATE, ARGV[1])
    return {1, cur}
  end
end
return {0, cur}
`)

// moveState moves the campaign to state to if it is in one of from. It
// returns whether it moved and the state it was in ("" when there is no
// campaign).
func moveState(ctx context.Context, rdb redis.UniversalClient, k keys, to State, from []State) (bool, State, error) {
	args := []any{string(to)}
	for _, f := range from {
		args = append(args, string(f))
	}
	v, err := setStateScript.Run(ctx, rdb, []string{k.meta}, args...).Slice()
	if err != nil {
		return false, "", err
	}
	cur, _ := v[1].(string)
	n, _ := v[0].(int64)
	return n == 1, State(cur), nil
}

// unparkScript puts the rows of deleted tasks back at the head of the
// backlog (if their end was not recorded meanwhile) and forgets the parked
// entries of tasks that stayed. KEYS: parked, window, backlog, retrying,
// meta. ARGV: number of deleted ids, deleted ids..., kept ids...
var unparkScript = newScript(`
local nd = tonumber(ARGV[1])
local back = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local row = redis.call('HGET', KEYS[1], id)
  if i <= nd + 1 and row and redis.call('HDEL', KEYS[2], id) == 1 then
    redis.call('LPUSH', KEYS[3], row)
    redis.call('SREM', KEYS[4], id)
    back = back + 1
  end
  redis.call('HDEL', KEYS[1], id)
end
if back > 0 then redis.call('HINCRBY', KEYS[5], M_FED, -back) end
return back
`)

// unpark puts the parked rows of the deleted tasks back in the backlog and
// forgets the parked entries of the kept ones; it returns how many rows
// went back.
func unpark(ctx context.Context, rdb redis.UniversalClient, name string, deleted, kept []any) (int, error) {
	if len(deleted)+len(kept) == 0 {
		return 0, nil
	}
	k := keysFor(name)
	args := append(append([]any{len(deleted)}, deleted...), kept...)
	n, err := unparkScript.Run(ctx, rdb, []string{k.parked, k.window, k.backlog, k.retrying, k.meta}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("campaign %s: put rows back: %w", name, err)
	}
	return n, nil
}

// The answers of cancelTaskScript.
const (
	cancelNotInWindow = 0
	cancelWasQueued   = 1
	cancelWasRetrying = 2
)

// cancelTaskScript counts one task removed by cancel. KEYS: window,
// retrying, counts, reruns, dead. ARGV: id, audit row for a re-run
// (settleScript's; may be empty). Returns 0 (not in the window), 1 (was
// queued), 2 (was waiting for a retry).
var cancelTaskScript = newScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], C_CANCELLED, 1)
if redis.call('SREM', KEYS[4], ARGV[1]) == 1 and ARGV[2] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[2]) end
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then return 2 end
return 1
`)

// countCancelled counts the task id as cancelled if it is in the window;
// it answers cancelNotInWindow, cancelWasQueued or cancelWasRetrying. A
// dead letter run again by hand (in reruns) gains the audit row rerun, if
// not empty, as settle's re-runs do.
func countCancelled(ctx context.Context, rdb redis.UniversalClient, k keys, id, rerun string) (int, error) {
	return cancelTaskScript.Run(ctx, rdb, []string{k.window, k.retrying, k.counts, k.reruns, k.dead}, id, rerun).Int()
}

// cancelBacklogScript drops the backlog. KEYS: backlog, meta, counts.
var cancelBacklogScript = newScript(`
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], M_FEEDING)
if n > 0 then redis.call('HINCRBY', KEYS[3], C_CANCELLED, n) end
return n
`)

// dropBacklog drops the backlog, counting its rows as cancelled, and
// returns how many.
func dropBacklog(ctx context.Context, rdb redis.UniversalClient, k keys) (int64, error) {
	return cancelBacklogScript.Run(ctx, rdb, []string{k.backlog, k.meta, k.counts}).Int64()
}

// luaRerun defines the functions of the scripts that take a dead letter
// run again by hand back into its campaign (recordScript, queuedRerunScript).
//
// deadEntry(d) splits a dead_ids entry "CODE INDEX ROW" into the code and
// the row. A stored row never starts with a digit (its first byte is the
// kind mark or a field's length, at most 32), so it also cuts the indexes
// that a recallq before this one left before the row: a dead letter run
// again and not ended at once went back to the window as "INDEX ROW", and
// came back to dead_ids with it.
//
// revive(counts, window, deadIDs, id, d) moves the task id, whose dead_ids
// entry is d, from the dead letters (and their count) back to the window,
// and returns its row.
//
// watchRerun(meta, reruns, id) marks the task id of the window as a re-run
// until it ends, and makes a done campaign running again, without its
// finished time, so that it does not say done while a task of it is
// pending; it returns 1 when the campaign was done or cancelled: the caller
// must then put it in the active set, for the feeder to watch the task.
const luaRerun = `
local function deadEntry(d)
  local sp = string.find(d, ' ', 1, true)
  local code, row = string.sub(d, 1, sp - 1), string.sub(d, sp + 1)
  while string.find(row, '^%d') do
    local next = string.find(row, ' ', 1, true)
    if not next then break end
    row = string.sub(row, next + 1)
  end
  return code, row
end
local function revive(counts, window, deadIDs, id, d)
  local code, row = deadEntry(d)
  redis.call('HDEL', deadIDs, id)
  redis.call('HINCRBY', counts, C_DEAD_LETTERED, -1)
  if redis.call('HINCRBY', counts, C_DEAD_PREFIX .. code, -1) <= 0 then redis.call('HDEL', counts, C_DEAD_PREFIX .. code) end
  redis.call('HSET', window, id, row)
  return row
end
local function watchRerun(meta, reruns, id)
  redis.call('SADD', reruns, id)
  local state = redis.call('HGET', meta, M_STATE)
  if state == STATE_DONE then
    redis.call('HSET', meta, M_STATE, STATE_RUNNING)
    redis.call('HDEL', meta, M_FINISHED)
  end
  if state == STATE_DONE or state == STATE_CANCELLED then return 1 end
  return 0
end
`

// recordScript records events of tasks of one campaign, in order.
//
// KEYS: counts, window, retrying, dead, dead_ids, meta, reruns. ARGV: six
// per event: task ID, fate, code, audit row (for a dead letter), audit row
// (for a re-run), and "1" when only a task in the window may be counted
// (the sync's settle, whose view may predate the worker's record). A final
// fate is counted only if it removes the task from the window, so each
// task is counted once however often it ends. A task
// not in the window but among the dead letters was run again by hand
// (asynqmon, the asynq CLI): it leaves the dead letters and counts as what
// it became; the audit keeps the dead letter and gains a row saying how the
// re-run ended. A re-run that will run again (retrying, kept) is back in
// the window, and in reruns until it ends, so that its end, at whichever
// attempt, gains that row too. A done campaign is then running again,
// without its finished time, so that it does not say done while a task of
// it is pending, and the feeder marks it done again once the task has ended;
// a cancelled one stays cancelled, and the feeder watches the task until it
// ends. Either way the caller must put the campaign back in the active set
// (another hash slot, so not here).
// It answers {watch, counted...}: watch is 1 when the campaign must be put
// back in the active set, counted[i] 1 when event i counted its task.
var recordScript = newScript(luaRerun + `
local watch = 0
local function record(id, fate, code, audit, rerunRow, windowOnly)
  local row = redis.call('HGET', KEYS[2], id)
  local rerun = false
  if not row then
    if windowOnly == '1' then return 0 end
    local d = redis.call('HGET', KEYS[5], id)
    if not d then return 0 end
    row = revive(KEYS[1], KEYS[2], KEYS[5], id, d)
    rerun = true
  end
  if fate == RECORD_RETRYING then
    redis.call('SADD', KEYS[3], id)
    if rerun and watchRerun(KEYS[6], KEYS[7], id) == 1 then watch = 1 end
    return 0
  end
  redis.call('SREM', KEYS[3], id)
  redis.call('HDEL', KEYS[2], id)
  if redis.call('SREM', KEYS[7], id) == 1 then rerun = true end
  redis.call('HINCRBY', KEYS[1], fate, 1)
  if fate == C_DEAD_LETTERED then
    redis.call('HINCRBY', KEYS[1], C_DEAD_PREFIX .. code, 1)
    local n = redis.call('RPUSH', KEYS[4], audit)
    redis.call('HSET', KEYS[5], id, code .. ' ' .. (n - 1) .. ' ' .. row)
  elseif rerun then
    redis.call('RPUSH', KEYS[4], rerunRow)
  end
  return 1
end
local out = {}
for i = 1, #ARGV, 6 do
  out[#out + 1] = record(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
end
table.insert(out, 1, watch)
return out
`)

// endEvent is one event for recordScript: fate is a counts field or
// recordRetrying; audit is the audit row of a dead letter, rerun the row of
// a dead letter run again that ended otherwise; windowOnly counts the task
// only if it is in the window (a worker's record may have moved it since
// the caller looked).
type endEvent struct {
	id, fate     string
	code         int
	audit, rerun string
	windowOnly   bool
}

// recordEnds records the events of tasks of the campaign k, in order, in
// one script call; counted[i] is 1 when events[i] counted its task, and
// watch is true when a dead letter run again is back in the window of a
// done (now running again) or cancelled campaign: the caller must then put
// the campaign back in the active set.
func recordEnds(ctx context.Context, rdb redis.UniversalClient, k keys, events []endEvent) (counted []int64, watch bool, err error) {
	args := make([]any, 0, 6*len(events))
	for _, e := range events {
		only := "0"
		if e.windowOnly {
			only = "1"
		}
		args = append(args, e.id, e.fate, e.code, e.audit, e.rerun, only)
	}
	v, err := recordScript.Run(ctx, rdb, k.recordKeys(), args...).Int64Slice()
	if err != nil {
		return nil, false, err
	}
	if len(v) != len(events)+1 {
		return nil, false, fmt.Errorf("record ends: %d answers for %d events", len(v), len(events))
	}
	return v[1:], v[0] == 1, nil
}

// queuedRerunScript takes back into its campaign a dead letter run again
// by hand that waits in asynq's queue, not taken by a worker yet: it
// leaves the dead letters for the window, marked as a re-run, as when the
// worker records its first attempt (recordScript). KEYS: meta, counts,
// window, dead_ids, reruns. ARGV: task ID, its dead_ids entry as read
// before asynq said it was pending. It moves nothing when the entry
// changed since (a worker took the task and recorded it, or a second
// re-run of it was dead-lettered again) or the task is in the window
// already. It answers -1 when it moved nothing, else watchRerun's answer.
var queuedRerunScript = newScript(luaRerun + `
local d = redis.call('HGET', KEYS[4], ARGV[1])
if d ~= ARGV[2] or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return -1 end
revive(KEYS[2], KEYS[3], KEYS[4], ARGV[1], d)
return watchRerun(KEYS[1], KEYS[5], ARGV[1])
`)

// takeBackQueuedRerun takes the dead letter id, run again by hand and
// queued, back into the campaign k if its dead_ids entry is still entry
// (queuedRerunScript); it reports whether it did.
func takeBackQueuedRerun(ctx context.Context, rdb redis.UniversalClient, k keys, id, entry string) (bool, error) {
	v, err := queuedRerunScript.Run(ctx, rdb, []string{k.meta, k.counts, k.window, k.deadIDs, k.reruns}, id, entry).Int()
	return v >= 0, err
}

// markRetryingScript adds to the retrying set the tasks that are still in
// the window (one that ended meanwhile must not linger there).
// KEYS: window, retrying. ARGV: ids.
var markRetryingScript = newScript(`
for i = 1, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then redis.call('SADD', KEYS[2], ARGV[i]) end
end
return 0
`)

// markRetrying adds the ids still in the window to the retrying set.
func markRetrying(ctx context.Context, rdb redis.UniversalClient, k keys, ids []any) error {
	return markRetryingScript.Run(ctx, rdb, []string{k.window, k.retrying}, ids...).Err()
}

// settleScript counts a task of the window that ended without a recorded
// end. KEYS: counts, window, retrying, reruns, dead. ARGV: id, count, audit
// row for a re-run (recordScript's rerunRow; may be empty).
var settleScript = newScript(`
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if redis.call('SREM', KEYS[4], ARGV[1]) == 1 and ARGV[3] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[3]) end
return 1
`)

// settle counts the task id of the window under the counts field, if it
// is still in the window; it returns 1 when it counted it. A dead letter
// run again by hand (in reruns) gains the audit row rerun, if not empty,
// as recordScript's re-runs do.
func settle(ctx context.Context, rdb redis.UniversalClient, k keys, id, field, rerun string) (int, error) {
	return settleScript.Run(ctx, rdb, []string{k.counts, k.window, k.retrying, k.reruns, k.dead}, id, field, rerun).Int()
}

// claimScript reserves the next rows of the backlog for one batch: it
// records the batch's size in meta.feeding, so a batch cut short by a crash
// is replayed, exactly, by the next one.
//
// KEYS: meta, backlog. ARGV: room. Returns {status, replay, rows...}.
var claimScript = newScript(`
if redis.call('HGET', KEYS[1], M_STATE) ~= STATE_RUNNING then return {ANSWER_STATE, '0'} end
local stale = tonumber(redis.call('HGET', KEYS[1], M_FEEDING) or '0')
local n = tonumber(ARGV[1])
if stale > 0 then n = stale end
local rows = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #rows == 0 then
  redis.call('HDEL', KEYS[1], M_FEEDING)
  return {ANSWER_OK, '0'}
end
redis.call('HSET', KEYS[1], M_FEEDING, #rows)
local out = {ANSWER_OK, tostring(stale)}
for i = 1, #rows do out[#out + 1] = rows[i] end
return out
`)

// claimBatch reserves up to room rows of the backlog (or the rows of a
// batch cut short, again). ok is false when the campaign is not running;
// replay is true when the rows are those of a batch cut short.
func claimBatch(ctx context.Context, rdb redis.UniversalClient, k keys, room int) (rows []string, replay, ok bool, err error) {
	res, err := claimScript.Run(ctx, rdb, []string{k.meta, k.backlog}, room).StringSlice()
	if err != nil {
		return nil, false, false, err
	}
	if len(res) < 2 || res[0] != answerOK {
		return nil, false, false, nil
	}
	return res[2:], res[1] != "0", true, nil
}

// commitScript ends a batch: the rows leave the backlog, the duplicates
// leave the window and are counted.
//
// KEYS: meta, backlog, window, counts. ARGV: rows, duplicates, unusable, ids to drop...
var commitScript = newScript(`
redis.call('LTRIM', KEYS[2], tonumber(ARGV[1]), -1)
redis.call('HDEL', KEYS[1], M_FEEDING)
redis.call('HINCRBY', KEYS[1], M_FED, ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[4], C_DUPLICATES, ARGV[2]) end
if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', KEYS[4], C_UNACCOUNTED, ARGV[3]) end
for i = 4, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
return 1
`)

// commitBatch ends a batch of rows rows: they leave the backlog, dups
// duplicates and unusable rows are counted, and the window entries drop
// are removed.
func commitBatch(ctx context.Context, rdb redis.UniversalClient, k keys, rows, dups, unusable int, drop []any) error {
	args := append([]any{rows, dups, unusable}, drop...)
	return commitScript.Run(ctx, rdb, []string{k.meta, k.backlog, k.window, k.counts}, args...).Err()
}

// doneScript marks a running campaign done once nothing of it is left.
// KEYS: meta, backlog, window, parked, retrying, reruns. ARGV: time.
var doneScript = newScript(`
local m = redis.call('HMGET', KEYS[1], M_STATE, M_IMPORT_DONE, M_FEEDING)
if m[1] ~= STATE_RUNNING or m[2] ~= '1' or (m[3] and m[3] ~= '0') then return 0 end
if redis.call('LLEN', KEYS[2]) > 0 or redis.call('HLEN', KEYS[3]) > 0 or redis.call('HLEN', KEYS[4]) > 0 then return 0 end
redis.call('HSET', KEYS[1], M_STATE, STATE_DONE, M_FINISHED, ARGV[1])
redis.call('DEL', KEYS[5], KEYS[6])
return 1
`)

// finishIfEmpty marks a running campaign done, at now, if its import is
// complete and nothing of it is left; it reports whether it did.
func finishIfEmpty(ctx context.Context, rdb redis.UniversalClient, k keys, now time.Time) (bool, error) {
	done, err := doneScript.Run(ctx, rdb, []string{k.meta, k.backlog, k.window, k.parked, k.retrying, k.reruns},
		now.UTC().Format(time.RFC3339)).Int()
	return done == 1, err
}
