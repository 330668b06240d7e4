// Package campaign runs bulk recall campaigns: a file of messages to recall
// (CSV or JSON Lines, any size) becomes a backlog in Redis that workers feed
// into asynq's bulk queue a small window at a time, with per-campaign counts,
// a dead-letter audit that is never trimmed, and pause, resume and cancel.
//
// # Why a backlog and not a million asynq tasks
//
// asynq keeps a hash of several hundred bytes per task, and a paused queue
// still holds every task: pausing one campaign of many would mean moving
// each of its tasks. So Import streams the validated rows into a Redis LIST
// of compact rows (about 50 bytes each), and a Feeder moves them into
// asynq's recall_bulk queue keeping only Window tasks (10 s at the cap)
// pending. Pause and cancel then touch the window, not the campaign.
//
// # Keys
//
// Every key of a campaign carries the hash tag {camp:NAME}, so a campaign's
// Lua scripts work on Redis Cluster. store.go names them all, and holds
// every script:
//
//	recallq:campaigns                 SET   names of all campaigns
//	recallq:campaigns:active          SET   those neither done nor cancelled, and the cancelled
//	                                        ones with tasks left in their window (still being
//	                                        called, or a dead letter run again): what the
//	                                        feeder reads
//	recallq:{camp:NAME}:meta          HASH  the record: sdkappid, created, source, format,
//	                                        state (running|paused|cancelled|done), the
//	                                        import checkpoint (import_rows, import_line,
//	                                        import_crc, import_done), rejected, fed, feeding
//	recallq:{camp:NAME}:counts        HASH  recalled, already_recalled, dead_lettered,
//	                                        dead:<code>, duplicates, cancelled, deleted,
//	                                        unaccounted
//	recallq:{camp:NAME}:backlog       LIST  rows not yet handed to asynq, in input order
//	recallq:{camp:NAME}:window        HASH  task ID -> row, for every task handed to asynq
//	                                        whose end has not been recorded
//	recallq:{camp:NAME}:retrying      SET   task IDs of the window waiting for a retry
//	recallq:{camp:NAME}:parked        HASH  task ID -> row while pause moves it back
//	recallq:{camp:NAME}:dead          LIST  the audit: one row per dead-lettered recall, and
//	                                        one per re-run of a dead letter that ended otherwise
//	recallq:{camp:NAME}:dead_ids      HASH  task ID -> "CODE INDEX ROW" for each current dead
//	                                        letter (INDEX: its row in the audit), so a dead
//	                                        letter run again by hand can leave the count
//	recallq:{camp:NAME}:reruns        SET   task IDs of the window that are dead letters run
//	                                        again by hand, until they end: their end, at
//	                                        whichever attempt, gains its row in the audit
//	recallq:{camp:NAME}:rates         LIST  "UNIXMS ENDED" samples of a running campaign,
//	                                        newest first, the last 120 (the dashboard's chart)
//	recallq:{camp:NAME}:op            STRING lock: one feeder batch, pause or cancel at a time
//	recallq:{feed:SDKAPPID}:lock      STRING lock: the one active feeder of an app
//	recallq:{feed:SDKAPPID}:rate      STRING the shared limiter's current rate, for ETAs
//
// # Counting exactly once
//
// A task's end is counted by the Recorder only when it removes the task's
// entry from the window (HDEL returns 1), in the same script that bumps the
// counter and appends the audit row. A task that runs twice (its worker died
// after the call and before asynq heard of it) or a duplicate row is
// therefore counted once, at no memory cost beyond the window. The
// Recorder writes synchronously, one script call per final event, before the
// handler returns to asynq: nothing is buffered, so nothing is lost on any
// stop, graceful or not.
//
// # asynq's own tools
//
// Operators also act on a campaign's tasks through asynqmon and asynq's
// CLI; sync.go says how each action reaches the campaign's records.
package campaign
