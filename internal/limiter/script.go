package limiter

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Times in the scripts are integer microseconds of Redis TIME. They stay
// below 2^53, so Lua's doubles hold them exactly; they are written with
// string.format('%.0f') because Lua 5.1's tostring keeps only 14 digits.
//
// Redis 7 replicates scripts by their effects, so a script may read TIME
// (and INFO) before it writes.

// scaleLua defines scaleAt(st, now, regain, probe, margin): the bucket's
// rate scale at now (aimd.go), from the scale s0 last set at scaled and the
// ceiling c, the scale that drew the strike (st[1], st[2], st[3]; no s0:
// 1). With knee = c*(1-margin) and t the seconds since scaled, it climbs
// back concavely to the knee in regain seconds, knee - (knee-s0)*(1-t/regain)^3,
// then probes above it convexly, knee + probe*(t-regain)^3; at most 1.
const scaleLua = `
local function scaleAt(st, now, regain, probe, margin)
  if not st[1] then
    return 1
  end
  local s0 = tonumber(st[1])
  local t = math.max(0, (now - (tonumber(st[2]) or now)) / 1000000)
  local knee = (tonumber(st[3]) or 1) * (1 - margin)
  local s
  if s0 >= knee then
    s = s0 + probe * t * t * t
  elseif t < regain then
    local u = 1 - t / regain
    s = knee - (knee - s0) * u * u * u
  else
    local u = t - regain
    s = knee + probe * u * u * u
  end
  return math.min(1, s)
end
`

// The flow counters (aimd.go): how many slots the fleet was granted and how
// many rate-limit answers it reported, per flowWidth of Redis time, so that
// a strike can tell the rate that got through. Each is a ring of
// flowBuckets fields of the flow hash, "g<i>" for grants (at their slot
// time) and "r<i>" for rate-limit answers (when reported), i the bucket's
// epoch (t / flowWidth) modulo flowBuckets, holding epoch*flowMult + count:
// a field left by an older turn of the ring reads as 0. The ring spans
// 5.12 s: a second back for the sum plus how far ahead slots are granted
// (lookahead and pause); a slot granted further ahead than that overwrites
// a bucket still to be read and is not counted (a lower estimate: a deeper
// cut, at most aimdDeepest). A count saturates at flowMult-1 (500,000
// calls/s).
const (
	flowWidth   = 20000 // µs
	flowBuckets = 256
	flowMult    = 10000
)

// flowLua defines flowAdd(key, kind, t), which counts one event of kind
// ('g' or 'r') at t µs, flowRemove(key, kind, t), which takes one back, and
// flowSum(key, kind, from, to), the events of kind in (from, to], the
// buckets at the edges weighted by the part of them inside.
var flowLua = `
local FLOW_W, FLOW_N, FLOW_M = ` + strconv.Itoa(flowWidth) + `, ` + strconv.Itoa(flowBuckets) + `, ` + strconv.Itoa(flowMult) + `
local function flowAdd(key, kind, t)
  local e = math.floor(t / FLOW_W)
  local f = kind .. (e % FLOW_N)
  local v = tonumber(redis.call('HGET', key, f))
  if v and math.floor(v / FLOW_M) == e then
    v = math.min(v + 1, e * FLOW_M + FLOW_M - 1)
  else
    v = e * FLOW_M + 1
  end
  redis.call('HSET', key, f, string.format('%.0f', v))
end
local function flowRemove(key, kind, t)
  local e = math.floor(t / FLOW_W)
  local f = kind .. (e % FLOW_N)
  local v = tonumber(redis.call('HGET', key, f))
  if v and math.floor(v / FLOW_M) == e and v > e * FLOW_M then
    redis.call('HSET', key, f, string.format('%.0f', v - 1))
  end
end
local function flowSum(key, kind, from, to)
  local e0, e1 = math.floor(from / FLOW_W), math.floor(to / FLOW_W)
  if e1 - e0 >= FLOW_N then
    e0 = e1 - FLOW_N + 1
  end
  local fields = {}
  for e = e0, e1 do
    fields[#fields + 1] = kind .. (e % FLOW_N)
  end
  local vs = redis.call('HMGET', key, unpack(fields))
  local sum = 0
  for k = 1, #vs do
    local e = e0 + k - 1
    local v = tonumber(vs[k])
    if v and math.floor(v / FLOW_M) == e then
      local lo, hi = math.max(from, e * FLOW_W), math.min(to, (e + 1) * FLOW_W)
      sum = sum + (v - e * FLOW_M) * math.max(0, hi - lo) / FLOW_W
    end
  end
  return sum
end
`

// grantScript grants the next slot.
//
//	KEYS[1] gcra hash (tat, pause, srv, rnow, scale, scaled, ceil, hold, strike)
//	KEYS[2] flow hash
//	ARGV[1] interval µs, ARGV[2] horizon µs, ARGV[3] key TTL ms,
//	ARGV[4] regain s, ARGV[5] probe /s³, ARGV[6] margin,
//	ARGV[7] slots this process dropped as late, µs, comma-separated, or ''
//	ARGV[8] lead µs: on an idle schedule the slot lies this far after now
//	ARGV[9] '1' to restart the schedule (the caller saw Redis's clock jump
//	forward), else '0'
//
// The interval is divided by the bucket's rate scale (aimd.go, scaleAt).
// The slot is counted in the flow hash at its time (flowAdd), and the
// dropped slots are taken off (flowRemove): they got nothing through.
//
// A schedule that is missing is restarted as a pause of one horizon: pause
// = max(pause, now + horizon) (a slow-down may have paused the bucket
// since). One that was written by another server (its run_id differs:
// restored from a snapshot, a promoted replica, a moved slot), was written
// more than a horizon ahead of now on this server's clock (rnow, Redis's now
// at the last grant: its clock stepped back), or that the caller asks to
// restart, is restarted the same way with the stored tat and pause dropped. They are in another clock, or
// one that jumped: kept, a clock behind by an hour would hold the fleet for
// the hour. The rate scale's times (scaled, hold) are brought back to now
// when they lie ahead of it, for the same reason. A step back smaller than
// the horizon only leaves a gap as long as the step, no longer than the
// restart's own. A step forward leaves the schedule behind now, like an
// idle one, so the script cannot see it; the callers' clock anchors can
// (anchor.go), and ask for the restart.
// INFO is called with pcall so that an ACL or a renamed command that forbids
// it only disables the run_id check (srv is then always empty).
//
// The lead is about the caller's round trip to Redis: on an idle schedule
// the slot would otherwise be Redis's now, already past when the answer
// arrives, and dropped as late whenever the round trip exceeds the
// lateness cutoff, again and again. A schedule still ahead of now keeps its
// slots back to back: work waiting never gets a gap from the lead.
//
// It returns {slot, now, reset, queue, scale}: the granted slot and Redis's
// now in µs, 1 when the schedule was restarted, how far the slot lies
// beyond max(now, pause) in µs (the queue reserved ahead, for the horizon
// check), and the rate scale in millionths.
var grantScript = redis.NewScript(scaleLua + flowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local info = redis.pcall('INFO', 'server')
local srv = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or ''
local st = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'srv', 'scale', 'scaled', 'ceil', 'rnow', 'hold')
local tat = tonumber(st[1]) or 0
local pause = tonumber(st[2]) or 0
local reset = 0
if st[1] == false then
  -- No schedule (first use, FLUSHALL, expiry): a pause a slow-down wrote
  -- since, in this server's clock, still holds.
  pause, reset = math.max(pause, now + horizon), 1
  redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', pause))
elseif st[3] ~= srv or now < (tonumber(st[7]) or 0) - horizon or ARGV[9] == '1' then
  tat, pause, reset = 0, now + horizon, 1
  redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', pause))
  if (tonumber(st[5]) or 0) > now then
    st[5] = string.format('%.0f', now)
    redis.call('HSET', KEYS[1], 'scaled', st[5])
  end
  if (tonumber(st[8]) or 0) > now then
    redis.call('HSET', KEYS[1], 'hold', string.format('%.0f', now))
  end
end
local scale = scaleAt({st[4], st[5], st[6]}, now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
interval = math.ceil(interval / scale)
local free = math.max(now, pause)
local slot = math.max(tat, free)
if slot <= now then slot = now + tonumber(ARGV[8]) end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', slot + interval), 'srv', srv, 'rnow', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
flowAdd(KEYS[2], 'g', slot)
for d in string.gmatch(ARGV[7], '%d+') do
  flowRemove(KEYS[2], 'g', tonumber(d))
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {slot, now, reset, slot - free, math.floor(scale * 1000000)}
`)

// slowDownScript notes a "too many requests" answer (a strike) and acts on
// it unless it is isolated or held: when the previous strike lies more than
// the window back, it only records this one and answers {0, pause}; before
// hold it answers {2, pause}: the strike comes from a call granted before
// the last slow-down took effect, and says nothing of the rate in force.
// Every answer is counted in the flow hash (flowAdd 'r').
//
// Otherwise it lowers the bucket's rate scale to what got through (aimd.go):
// D, the slots granted in the second before the refused call's slot minus
// the rate-limit answers reported in the second before now, is how many of
// the fleet's calls Tencent took in the sliding second that refused this
// one. The refused call's slot is the one the caller's Observe saw last
// (a concurrent call's may come between: its slot lies as near), or,
// unknown or more than 5 s old, now - lag (lag: how long after its slot a
// call's answer typically comes). The ceiling is D as a scale
// (D times the full-rate interval), at most the scale in force and at
// least deepest times it, and the new scale the ceiling less the margin.
// With fewer than least-grants slots counted (no flow yet: a new version's
// first strike, an idle bucket) the ceiling is the scale in force and the
// new scale the ceiling times the scale factor.
//
// At the full rate (scale 1: no quota sharing known, a storm) it also
// makes pause = max(pause, max(tat, now) + gap): the pause starts after the
// slots already granted (the fleet's lookahead), so it leaves a gap in the
// calls, not in the grants. The gap is d without an estimate; with one it
// is the strike window times (scale in force / new scale - 1), at most d:
// long enough that no sliding second holds more than D of the old rate's
// calls and the new rate's together (a second that starts with x s of
// calls at the old rate r0 holds at most r0*x + r1*(1-x-gap) <= r1 when
// gap >= x*(r0/r1 - 1)), so that the cut costs no more calls than it must.
// Below the full rate the lower rate is the answer. Either way hold is
// max(tat, now) plus the strike window, when the calls in Tencent's window
// are all at the lower rate, and at least the pause end. The rate starts
// to climb back (scaled) at once below the full rate, and a strike window
// after the pause at it.
//
//	KEYS[1] gcra hash, KEYS[2] flow hash
//	ARGV[1] d µs, ARGV[2] key TTL ms, ARGV[3] strike window µs,
//	ARGV[4] scale factor, ARGV[5] regain s, ARGV[6] probe /s³,
//	ARGV[7] margin, ARGV[8] least scale, ARGV[9] full-rate interval µs,
//	ARGV[10] lag µs, ARGV[11] deepest, ARGV[12] least grants,
//	ARGV[13] the refused call's slot µs, 0 when unknown
//
// It returns {0 isolated, 1 paused, 2 held, 3 lowered without a pause; the
// pause end in µs of Redis time; the new scale and ceiling in millionths
// (0 unless lowered); D per second, -1 when not estimated}.
var slowDownScript = redis.NewScript(scaleLua + flowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local st = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'strike', 'scale', 'scaled', 'ceil', 'hold')
local cur = tonumber(st[2]) or 0
local last = tonumber(st[3])
redis.call('HSET', KEYS[1], 'strike', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
flowAdd(KEYS[2], 'r', now)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if last == nil or now - last > tonumber(ARGV[3]) then
  return {0, cur, 0, 0, -1}
end
if now < (tonumber(st[7]) or 0) then
  return {2, cur, 0, 0, -1}
end
local inforce = scaleAt({st[4], st[5], st[6]}, now, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
local upto = now - tonumber(ARGV[10])
local refusedSlot = tonumber(ARGV[13])
if refusedSlot > now - 5000000 and refusedSlot <= now then
  upto = refusedSlot
end
local granted = flowSum(KEYS[2], 'g', upto - 1000000, upto)
local ceil, scale, through = inforce, inforce * tonumber(ARGV[4]), -1
if granted >= tonumber(ARGV[12]) then
  local to = (math.floor(now / FLOW_W) + 1) * FLOW_W -- every answer counted lies before now
  through = math.max(0, granted - flowSum(KEYS[2], 'r', to - 1000000, to))
  ceil = math.min(inforce, math.max(inforce * tonumber(ARGV[11]), through * tonumber(ARGV[9]) / 1000000))
  scale = ceil * (1 - tonumber(ARGV[7]))
end
scale = math.max(tonumber(ARGV[8]), scale)
local ahead = math.max(tonumber(st[1]) or 0, now)
local hold, scaled, acted = ahead + tonumber(ARGV[3]), now, 3
if inforce >= 1 then
  local gap = tonumber(ARGV[1])
  if through >= 0 then
    gap = math.min(gap, math.ceil(tonumber(ARGV[3]) * (inforce / scale - 1)))
  end
  local pause = ahead + gap
  if cur < pause then
    cur = pause
    redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', pause))
  end
  hold, scaled, acted = math.max(cur, ahead + tonumber(ARGV[3])), cur + tonumber(ARGV[3]), 1
end
redis.call('HSET', KEYS[1], 'scale', string.format('%.6f', scale), 'scaled', string.format('%.0f', scaled),
  'ceil', string.format('%.6f', ceil), 'hold', string.format('%.0f', hold))
return {acted, cur, math.floor(scale * 1000000), math.floor(ceil * 1000000), math.floor(through)}
`)

// spreadScript publishes this process's tails (when ARGV[2] is not empty) as
// "n|lows|highs|sketch|<Redis µs when published>", drops entries older than the max
// age or malformed, and merges the live ones: with N the sum of their n and
// r = ceil(0.005*N) bounded to [1, 10] (and to the values present), it
// returns {r-th largest hi - r-th smallest lo, r-th smallest lo} in µs: the
// fleet's spread J and its p0.5 of lo, then the number of live entries (the
// processes calling) and their sketches (pacing.go) as {n, "q,q,...", n,
// ...}, for the caller to merge, and last the pacing remembered in KEYS[2]
// ("J|G" in µs, or empty). It returns {-1, -1, live, {}, memory} when no
// process has samples. ARGV[5], when not empty, is the pacing the caller
// adopted from live samples at its last publish: it is remembered for
// ARGV[6] ms.
//
//	KEYS[1] spread hash, KEYS[2] pace string
//	ARGV[1] process id, ARGV[2] tails or '', ARGV[3] max age µs, ARGV[4] key TTL ms,
//	ARGV[5] pace or '', ARGV[6] pace TTL ms
var spreadScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowStr = string.format('%.0f', now)
local maxAge = tonumber(ARGV[3])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. nowStr)
end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
end
local total, lows, highs, live, sketches = 0, {}, {}, 0, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local n, ls, hs, h, at = string.match(all[i + 1], '^(%d+)|([%d,%-]*)|([%d,%-]*)|([%d,]*)|(%d+)$')
  if n == nil or math.abs(now - tonumber(at)) > maxAge then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(n)
    live = live + 1
    for v in string.gmatch(ls, '%-?%d+') do lows[#lows + 1] = tonumber(v) end
    for v in string.gmatch(hs, '%-?%d+') do highs[#highs + 1] = tonumber(v) end
    sketches[#sketches + 1] = tonumber(n)
    sketches[#sketches + 1] = h
  end
end
local memory = redis.call('GET', KEYS[2]) or ''
if total == 0 or #lows == 0 or #highs == 0 then
  return {-1, -1, live, {}, memory}
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
table.sort(lows)
table.sort(highs, function(a, b) return a > b end)
local r = math.min(math.max(1, math.ceil(0.005 * total)), 10, #lows, #highs)
return {math.max(0, highs[r] - lows[r]), lows[r], live, sketches, memory}
`)

// delayScript pushes the schedule back after a late call: tat = max(tat,
// now) + d. A missing schedule is left alone (the next grant restarts it one
// horizon ahead anyway).
//
//	KEYS[1] gcra hash
//	ARGV[1] d µs, ARGV[2] key TTL ms
//
// It returns the new tat in µs of Redis time, or -1 when there is none.
var delayScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cur = redis.call('HGET', KEYS[1], 'tat')
if cur == false then
  return -1
end
local tat = math.max(tonumber(cur), now) + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return tat
`)

// run runs script by EVALSHA, falling back to EVAL when the server does not
// know it yet (first use, restart, SCRIPT FLUSH), and counts every round
// trip in trips and in l's total.
func (l *Limiter) run(ctx context.Context, trips *atomic.Int64, s *redis.Script, keys []string, args ...any) (any, error) {
	trips.Add(1)
	l.stats.roundTrips.Add(1)
	v, err := s.EvalSha(ctx, l.cfg.Redis, keys, args...).Result()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		trips.Add(1)
		l.stats.roundTrips.Add(1)
		v, err = s.Eval(ctx, l.cfg.Redis, keys, args...).Result()
	}
	return v, err
}
