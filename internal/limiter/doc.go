// Package limiter spaces the calls that every recallq worker makes to one
// rate-capped Tencent API (admin_msgwithdraw: 200 calls in any sliding second
// per app) so that all workers, on all machines, draw from one bucket in Redis
// and together run as close to the cap as the network allows, and never over
// it.
//
// # One schedule, kept by Redis
//
// The bucket is a GCRA (virtual scheduling) schedule: Redis keeps the next free
// slot, tat, in microseconds of Redis's own clock. Each Wait runs one Lua
// script (EVALSHA: one round trip) that reads Redis TIME, grants the slot
// max(tat, now, pause_until), moves tat one interval on and answers with
// the slot and its own now. The caller places the slot on its own monotonic
// clock and sleeps until it, so a worker whose wall clock is hours off
// changes nothing: only Redis's clock places slots. Each grant's round trip
// bounds the offset between the two clocks; the process keeps the
// intersection of its recent grants' bounds, widened as clocks may drift
// (anchor.go), so a slot is placed to within the fastest recent round trip
// and a grant whose answer sat in a socket or waited for a CPU does not send
// its call that much late.
//
// # How fast: pacing from the measured dispersion
//
// Slots leave evenly spaced, but each call reaches Tencent after its own
// latency, so the count of arrivals in a sliding second of Tencent's clock
// wanders around the rate r. Spacing at (1+J)/Rate, with J the spread of
// latencies, bounds it in the worst case, when every delay lines up
// against you; on a heavy-tailed network (a worker a continent away) that
// wastes a third of the cap. For independent delays the count has a
// variance of about r*G, with G = E|X - X'| the mean difference of two
// independent latencies, so the rate is paced at r + 5*sqrt(r*G) = Rate:
// 193/s at 20-50 ms uniform latency, 178/s at lognormal median 80 ms and
// p99 600 ms (see pacing.go for the numbers and the over-cap probability).
// G is measured, not guessed: Observe records, per call, how long after its
// send the answer's first byte came (plus the uncertainty of the slot's
// local placement, the clock anchor's width). About once a second each
// process publishes under the bucket in Redis a sketch of its samples of
// the last 3 s (65 quantiles), one script hands back the live ones, and G
// is that of their mixture: the fleet's, from the samples of all processes
// together. When no process has live samples, the fleet paces from the G
// and J it last measured, which the bucket remembers for paceMemory (a
// day); only before any was ever measured is the interval the worst case
// (1+Config.InitialSpread)/Rate, and a process then publishes every
// coldPublishEvery (250 ms) instead of every second until it knows one.
// G is trusted from matureSamples (100) live samples on: the first answers
// back are the fast ones. With fewer, the fleet paces from what it last
// measured, else by the worst case (1+J)/Rate of the spread its samples
// show, and with fewer than fewSamples (20) by InitialSpread's.
//
// The same script also merges each process's ten most extreme samples on
// each side into the fleet's spread J = p99.5 - p0.5 (N samples in all, rank
// r = ceil(0.005*N) bounded to [1, 10], exact because the fleet's r-th most
// extreme sample is among each process's r most extreme). J no longer sets
// the interval; it bounds the envelope beyond which a late answer is
// compensated (below), and is a metric.
//
// # Late calls
//
// The 0.5% of calls cut from each end of J still happen. One that reached
// Tencent later than the envelope, together with the on-time calls one second
// of slots after it, would put Rate+1 calls in one sliding second: a "too
// many requests" answer and a SlowDown of the whole fleet. So Observe
// compensates: when a call's late bound exceeds the fleet's p0.5 + J, it
// pushes the schedule back by the excess, at most one interval,
// tat = max(tat, now) + min(excess, interval), in a background round trip
// bounded by one second (Stats.Compensations counts them). The calls one
// second of slots after the late one then arrive later by as much, so that
// second holds no more than Rate arrivals; slots already granted keep their
// places. One interval is enough: a late call adds at most one call to any
// sliding second. The cap matters when answers come seconds late (a slow
// server, client timeouts): that says no more about when a call arrived,
// and pushing by the whole delay would stall the fleet. The cost is at most
// one slot on about 0.5% of calls.
//
// Only while the interval is the worst case, which assumes every arrival
// inside the envelope: the statistical interval's margin is set by the
// whole distribution of latencies, tail included, so under it a late
// answer is that tail, already paid for (on a lognormal 80 ms / 600 ms
// network the compensations cost about 3 slots a second, 1.5% of the
// rate).
//
// # The lateness cutoff
//
// Every model of how calls spread assumes that a call leaves at its slot.
// One that leaves later (a grant's answer that sat in a socket, a goroutine
// descheduled, a process stopped by GC, CPU throttling or SIGSTOP, a cold
// TLS handshake) lands in a second that already holds its share, and when
// many are late together (a stalled process's whole lookahead) they break
// the cap. Pushing the schedule back afterwards comes too late: the next
// free slot lies a fleet's lookahead ahead. So a permit is dropped instead
// when its grant's answer may have come more than Config.LateCutoff (5 ms)
// after its slot (the slot can lie as early as Slot minus the clock
// anchor's width), when Wait wakes more than the cutoff after it, when the
// caller, just before it sends, finds it past the cutoff (Permit.Admit), or
// when the HTTP client is still making the call's new connection at the
// cutoff (Permit.Go: the request is cancelled before a byte of it is
// written, the dial goes on for the pool, and its failure is the call's).
// The slot is lost and the caller asks for another: a lost slot never
// breaks the cap.
// Stats.LateDrops counts them. Calls up to the cutoff late still go, and
// when many are late together they can move Rate*cutoff calls into a later
// second: the pacing leaves that room on top of its margin for the spread
// (pacing.go), so the cutoff is small. At 20 ms, with uniform 20-22 ms
// latency, 16 processes on 2 cores drew 203 calls in one second.
//
// A grant on an idle schedule is placed twice this process's average round
// trip to Redis after Redis's now, so that its answer arrives before its
// slot: at Redis's now it would be past the cutoff on arrival whenever
// Redis answers slower than the cutoff, and so would every grant after it.
//
// A stopped process also reads the answers of the calls it had out late.
// Those calls went out on time; their answers say nothing about the
// network. A watch goroutine ticks every 10 ms and marks a tick that comes
// more than the cutoff late as a stall; Observe ignores a sample whose call
// was out during a stall (Stats.StalledSamples), so a stalled process
// neither widens the fleet's spread nor pushes its schedule back.
//
// # Bounded lookahead without polling
//
// A Wait takes a local permit of its lane (Urgent or Bulk) before it asks
// Redis for a slot and gives it back when its slot arrives. So each process
// holds at most AheadUrgent+AheadBulk slots reserved ahead of now, and an
// urgent call queues behind at most P*(AheadUrgent+AheadBulk) slots of P
// processes, not behind every waiting goroutine in the fleet. No goroutine
// ever polls Redis: one round trip per call.
//
// # Losing the schedule
//
// When the schedule's key is missing (Redis restart, FLUSHALL, a long idle
// expiry) or was written by another Redis server (restored from a snapshot,
// promoted replica after failover, resharded slot: the run_id stored with it
// differs, and so may the clock), the script restarts it with a pause of one
// horizon: no slot before Redis now + horizon. Slots granted before the loss
// still go, so the horizon must lie past all of them: past the fleet's
// lookahead, which grows with the processes, the interval and any pause in
// force (16 processes x 10 slots x (1+J)/200 is 1.2 s at J = 0.5 s). So the
// horizon follows it: the largest of Config.Horizon, the furthest this
// process saw the schedule ahead of Redis now in the last 10 s (plus a
// quarter and one interval), and processes x (AheadUrgent+AheadBulk) x
// interval + one interval, with the count of live processes read from the
// spread hash. A grant queued further than the horizon in use is counted in
// Stats.BeyondHorizon and logged. The price is one horizon of idleness after
// a loss.
//
// # SlowDown
//
// When the API answers "too many requests" anyway (a late call that got
// through, a cap shared with other clients), the caller reports it with
// SlowDown. An isolated one, with no other in the fleet within the last
// second (Redis keeps the time of the last, "strike"), pauses nothing: it
// costs its caller one more call. Another within the second, at the full
// rate, stores pause_until = max(pause_until, max(tat, Redis now) + gap)
// beside tat, gap being d, or shorter when the bucket knows how many calls
// got through (aimd.go). The pause starts after the slots already granted,
// which lie up to the fleet's lookahead ahead (0.84 s at 16 processes): a
// pause from Redis now would end inside the lookahead and leave no gap at
// all. Such a strike also lowers the bucket's rate, to the rate that got
// through when the bucket's counts of grants and 60007s tell it; strikes
// that answer calls granted before the cut took effect are held (they
// neither cut nor pause again), and below the full rate a strike only
// lowers the rate, without a pause (aimd.go).
//
// A per-process golang.org/x/time/rate limiter at Rate sits in front of Redis
// to protect it from a runaway caller; it is not the shared bucket.
package limiter
