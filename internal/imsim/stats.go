package imsim

import (
	"slices"
	"sync"
	"time"
)

// maxPerSecond bounds Stats.PerSecond (about 12 days of seconds), so a clock
// that jumps far ahead cannot make the simulator allocate without bound.
// Arrivals past it still count everywhere else.
const maxPerSecond = 1 << 20

// Stats is what the simulator has seen since it started or was last Reset.
type Stats struct {
	// PID is the simulator's process ID: GET /sim/stats sets it, so that a
	// program that started the simulator can tell it from another on the
	// same port. Stats called in-process leaves it zero.
	PID int `json:"pid,omitempty"`
	// Start is when counting began (New or Reset, by Config.Now);
	// PerSecond[i] counts the arrivals in [Start+i s, Start+(i+1) s).
	Start time.Time `json:"start"`
	// Calls is every API request answered, with a JSON result or an HTTP
	// error. Requests whose client went away during the latency sleep and
	// requests to the /sim/ control endpoints are not calls.
	Calls int64 `json:"calls"`
	// ByCode counts the JSON answers by ErrorCode (0 is success).
	ByCode map[int]int64 `json:"by_code"`
	// HTTPErrors counts the answers that were not HTTP 200 (the outage's 502).
	HTTPErrors int64 `json:"http_errors"`
	// Counted is the number of authenticated arrivals (UserSig valid,
	// identifier an admin): the calls the rate limit counts, rejected or not.
	Counted int64 `json:"counted"`
	// PerSecond is the number of counted arrivals in each second since Start.
	PerSecond []int `json:"per_second"`
	// MaxInAnyWindow is the largest number of arrivals, refused ones and
	// the outside load's included, in any sliding window: the maximum over
	// arrivals t of the count in (t-Window, t].
	MaxInAnyWindow int `json:"max_in_any_window"`
	// MaxWindowEnd is the arrival that first brought a sliding window to
	// MaxInAnyWindow (zero and omitted when there were none).
	MaxWindowEnd time.Time `json:"max_window_end,omitzero"`
	// MaxInAnyWindowOnTime is MaxInAnyWindow of the own arrivals only, each
	// placed where a server that is never late would count it: when its
	// handler started plus its latency, not when the simulator woke up and
	// counted it. Beside MaxInAnyWindow it tells a window the callers
	// filled from one the simulator's own lateness filled (its process
	// starved of CPU on a shared machine). Omitted past maxOnTime arrivals.
	MaxInAnyWindowOnTime int `json:"max_in_any_window_on_time,omitempty"`
	// MaxReadsInAnyWindow and MaxReadsIn100ms count the own arrivals by
	// when the simulator read them (their handlers started), before any
	// latency: the callers' sending pattern. Beside MaxInAnyWindowOnTime
	// they tell a window the callers sent too much into (a burst shows in
	// the reads) from one the latencies happened to fill (reads at the
	// paced rate). Omitted past maxOnTime arrivals.
	MaxReadsInAnyWindow int `json:"max_reads_in_any_window,omitempty"`
	MaxReadsIn100ms     int `json:"max_reads_in_100ms,omitempty"`
	// MaxReadsWindowEnd is the read that ended the first window of
	// MaxReadsInAnyWindow.
	MaxReadsWindowEnd time.Time `json:"max_reads_window_end,omitzero"`
	// Rejected60007 counts the arrivals the rate limit rejected with 60007
	// (the outside load's are in OutsideRejected60007).
	// ByCode[60007] also includes 60007 answers injected by Force or Faults.
	Rejected60007 int64 `json:"rejected_60007"`
	// RejectedPerSecond is the number of those rejections in each second
	// since Start (as long as PerSecond, or shorter: the seconds after its
	// end had none).
	RejectedPerSecond []int `json:"rejected_per_second"`
	// First and Last are the first and last counted arrivals (zero and
	// omitted from JSON when there were none).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`

	// OutsideRate is the steady outside load in force, calls per second
	// (outside.go): another service of the same app calling the API. Its
	// calls share the cap, and MaxInAnyWindow counts them, but Calls,
	// Counted, ByCode, PerSecond, Rejected60007, First and Last count only
	// the requests made to this server (recallq's own calls).
	OutsideRate float64 `json:"outside_rate"`
	// OutsideCalls counts the outside calls made since Start, and
	// OutsideRejected60007 those the rate limit refused with 60007.
	OutsideCalls         int64 `json:"outside_calls"`
	OutsideRejected60007 int64 `json:"outside_rejected_60007"`
}

// meter is the sliding-window rate limit and the arrival statistics. The
// arrivals of the last Window live in a ring buffer under one mutex: each
// arrival is O(1) amortised and the count is exact.
//
// Only admitted arrivals count toward Cap: a call refused with 60007 is
// not served, and Tencent's "200 calls a second" is what it serves. (A
// window that counted its refusals would refuse every call of an app that
// keeps asking for 201 a second, the other callers' too.) Every arrival,
// refused or not, counts in MaxInAnyWindow and the per-second figures.
type meter struct {
	mu     sync.Mutex
	window time.Duration
	cap    int

	start    time.Time
	ring     []arrival // oldest at head
	head     int
	n        int
	admitted int           // admitted arrivals in the ring
	first    time.Duration // the first own offset, valid when counted > 0
	ownLast  time.Duration // the latest own offset
	last     time.Duration // the latest offset, so offsets never go backwards

	perSecond []int
	rejPerSec []int
	max       int
	maxAt     time.Duration // the offset of the arrival that first reached max
	counted   int64
	rejected  int64
	outside   outside         // outside.go
	onTime    []time.Duration // own arrivals' on-time offsets, in arrival order
	reads     []time.Duration // and when they were read
}

// stamp is when the simulator read a call (its handler started) and the
// latency it gave it. The zero stamp is none (the history API's calls).
type stamp struct {
	read    time.Time
	latency time.Duration
}

// onTime is when a server that is never late would count the call.
func (s stamp) onTime() time.Time { return s.read.Add(s.latency) }

// maxOnTime bounds the on-time offsets a meter keeps (8 MiB): past it,
// MaxInAnyWindowOnTime is left out.
const maxOnTime = 1 << 20

// arrival is one arrival in the window.
type arrival struct {
	off      time.Duration // from start
	admitted bool
}

func newMeter(capacity int, window time.Duration, start time.Time) *meter {
	m := &meter{window: window, cap: capacity}
	m.reset(start)
	return m
}

func (m *meter) reset(start time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.start = start
	m.ring = make([]arrival, 64)
	m.head, m.n, m.admitted, m.first, m.ownLast, m.last = 0, 0, 0, 0, 0, 0
	m.perSecond, m.rejPerSec = nil, nil
	m.max, m.maxAt = 0, 0
	m.counted, m.rejected = 0, 0
	m.outside.restart(0)
	m.onTime, m.reads = nil, nil
}

// arrive records one authenticated arrival at now() and reports whether the
// rate limit allows it: it is rejected when Cap admitted arrivals were
// already counted in (now-Window, now]. The outside calls due by then are
// counted first, each at its own time. It calls now under the lock so that
// arrivals are recorded in order; a clock that steps backwards is treated
// as standing still. at, when not zero, is when the simulator read the call
// and its latency (Stats.MaxInAnyWindowOnTime, Stats.MaxReadsInAnyWindow).
func (m *meter) arrive(now func() time.Time, at stamp) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	off := max(now().Sub(m.start), m.last, 0)
	if at != (stamp{}) && len(m.onTime) < maxOnTime {
		m.onTime = append(m.onTime, at.onTime().Sub(m.start))
		m.reads = append(m.reads, at.read.Sub(m.start))
	}
	m.outside.catchUp(m, off)
	if m.counted == 0 {
		m.first = off
	}
	m.ownLast = off
	allowed := m.count(off)
	m.counted++
	if !allowed {
		m.rejected++
	}
	if sec := int(off / time.Second); sec < maxPerSecond {
		m.perSecond = bump(m.perSecond, sec, 1)
		if !allowed {
			m.rejPerSec = bump(m.rejPerSec, sec, 1)
		}
	}
	return allowed
}

// count puts an arrival at off (not before m.last) in the window and
// reports whether the rate limit admits it.
func (m *meter) count(off time.Duration) bool {
	off = max(off, m.last)
	m.last = off
	// Drop the arrivals at or before off-Window: they are out of the window.
	for m.n > 0 && m.ring[m.head].off <= off-m.window {
		if m.ring[m.head].admitted {
			m.admitted--
		}
		m.head = (m.head + 1) % len(m.ring)
		m.n--
	}
	allowed := m.admitted < m.cap

	if m.n == len(m.ring) {
		grown := make([]arrival, 2*len(m.ring))
		for i := 0; i < m.n; i++ {
			grown[i] = m.ring[(m.head+i)%len(m.ring)]
		}
		m.ring, m.head = grown, 0
	}
	m.ring[(m.head+m.n)%len(m.ring)] = arrival{off: off, admitted: allowed}
	m.n++
	if allowed {
		m.admitted++
	}
	if m.n > m.max {
		m.max, m.maxAt = m.n, off
	}
	return allowed
}

// bump adds n to counts[i], growing counts with zeros as needed.
func bump(counts []int, i, n int) []int {
	for len(counts) <= i {
		counts = append(counts, 0)
	}
	counts[i] += n
	return counts
}

// fill copies the meter's part of Stats into st, after counting the
// outside calls due by now.
func (m *meter) fill(st *Stats, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outside.catchUp(m, max(now.Sub(m.start), m.last, 0))
	st.Start = m.start
	st.Counted = m.counted
	st.PerSecond = append(make([]int, 0, len(m.perSecond)), m.perSecond...)
	st.RejectedPerSecond = append(make([]int, 0, len(m.rejPerSec)), m.rejPerSec...)
	st.MaxInAnyWindow = m.max
	if m.max > 0 {
		st.MaxWindowEnd = m.start.Add(m.maxAt)
	}
	if len(m.onTime) < maxOnTime {
		st.MaxInAnyWindowOnTime = maxInWindow(m.onTime, m.window)
		var end time.Duration
		st.MaxReadsInAnyWindow, end = maxWindow(m.reads, m.window)
		st.MaxReadsWindowEnd = m.start.Add(end)
		st.MaxReadsIn100ms = maxInWindow(m.reads, m.window/10)
	}
	st.Rejected60007 = m.rejected
	if m.counted > 0 {
		st.First = m.start.Add(m.first)
		st.Last = m.start.Add(m.ownLast)
	}
	m.outside.fill(st)
}

// counters are the per-answer statistics.
type counters struct {
	mu         sync.Mutex
	calls      int64
	byCode     map[int]int64
	httpErrors int64
}

func newCounters() *counters {
	c := &counters{}
	c.reset()
	return c
}

func (c *counters) reset() {
	c.mu.Lock()
	c.calls, c.httpErrors = 0, 0
	c.byCode = make(map[int]int64)
	c.mu.Unlock()
}

// answered counts a JSON answer with code.
func (c *counters) answered(code int) {
	c.mu.Lock()
	c.calls++
	c.byCode[code]++
	c.mu.Unlock()
}

// httpError counts an answer that was not HTTP 200.
func (c *counters) httpError() {
	c.mu.Lock()
	c.calls++
	c.httpErrors++
	c.mu.Unlock()
}

func (c *counters) fill(st *Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Calls = c.calls
	st.HTTPErrors = c.httpErrors
	st.ByCode = make(map[int]int64, len(c.byCode))
	for k, v := range c.byCode {
		st.ByCode[k] = v
	}
}

// maxInWindow is the most of the offsets offs (in any order) in any
// half-open window (t-w, t].
func maxInWindow(offs []time.Duration, w time.Duration) int {
	n, _ := maxWindow(offs, w)
	return n
}

// maxWindow is maxInWindow and the offset that ends the first such window.
func maxWindow(offs []time.Duration, w time.Duration) (best int, end time.Duration) {
	sorted := slices.Clone(offs)
	slices.Sort(sorted)
	lo := 0
	for hi, t := range sorted {
		for sorted[lo] <= t-w {
			lo++
		}
		if hi-lo+1 > best {
			best, end = hi-lo+1, t
		}
	}
	return best, end
}
