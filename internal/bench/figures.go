package bench

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/imsim"
)

// columns of the table, in order, with their widths.
var columns = []struct {
	name  string
	width int
}{
	{"limiter", 13}, {"procs", 5}, {"concurrency", 11}, {"tasks", 5}, {"wall_s", 6},
	{"rate_busy/s", 11}, {"utilisation", 11}, {"max_in_any_1s", 13}, {"60007s", 6},
	{"redis_ops/call", 14}, {"wait_p99", 8}, {"busy_s", 6}, {"left", 4},
}

// headerLine is the table's header.
func headerLine() string {
	cells := make([]string, len(columns))
	for i, c := range columns {
		if i == 0 {
			cells[i] = fmt.Sprintf("%-*s", c.width, c.name)
		} else {
			cells[i] = fmt.Sprintf("%*s", c.width, c.name)
		}
	}
	return strings.Join(cells, "  ")
}

// row is one configuration's figures.
type row struct {
	limiter               string
	procs, concurrency    int
	tasks                 int
	wall                  time.Duration
	rateBusy              float64 // NaN without a busy second
	busySeconds           int
	maxInAny1s            int
	rejected              int64
	opsPerCall            float64 // NaN without a report
	waitP99               time.Duration
	haveWaits             bool
	left                  int
	rateAll               float64 // counted / (last - first arrival)
	counted               int64
	reportCalls           int64
	byCode                map[int]int64
	spread, interval      time.Duration // shared limiter: the largest at the end
	resets, beyond, slow  int64
	drops, stalled        int64 // shared only: slots dropped as late, answers ignored as stalled
	grantDrops, wakeDrops int64 // shared only: the drops Wait made (late grant answer, late wake-up)
	connDrops             int64 // shared only: calls cut waiting for a new connection (Permit.Go)
	compensations         int64 // shared only: late answers that pushed the schedule back

	// The shared limiter over the busy seconds (NaN or zero otherwise).
	slotRate  float64       // slots granted per second
	spaceRate float64       // 1/interval, the mean of the workers' samples
	jMean     time.Duration // the spread J, the mean of the samples
	jMax      time.Duration
	gMean     time.Duration // the dispersion G, the mean of the samples that knew it
	gMax      time.Duration
	haveG     bool
	localMin  time.Duration // each process's own spread, its mean over the samples: the lowest
	localMax  time.Duration // and the highest
	fleetJ    time.Duration // p99.5 - p0.5 of every call's slot-to-answer time, all processes merged
	haveFleet bool
	idleGaps  int           // gaps between consecutive slots over two intervals
	idleTime  time.Duration // their length beyond one interval, in all
}

// newRow computes the figures of a configuration.
func newRow(c config, n int, st imsim.Stats, d drainResult, started, allStarted time.Time, reps []Report) row {
	r := row{limiter: c.label(), procs: c.procs, concurrency: c.concurrency, tasks: n,
		wall: d.at.Sub(started), maxInAny1s: st.MaxInAnyWindow, rejected: st.Rejected60007,
		counted: st.Counted, byCode: st.ByCode, rateBusy: math.NaN(), opsPerCall: math.NaN(), rateAll: math.NaN(),
		slotRate: math.NaN(), spaceRate: math.NaN()}
	if len(d.samples) > 0 {
		r.left = n - d.samples[len(d.samples)-1].done
	} else {
		r.left = n
	}
	if !st.First.IsZero() {
		busy := busyOf(st, d, allStarted)
		if len(busy) > 0 {
			sum := 0
			for _, s := range busy {
				sum += st.PerSecond[s]
			}
			r.rateBusy = float64(sum) / float64(len(busy))
			r.busySeconds = len(busy)
			r.spacing(st.Start.Add(time.Duration(busy[0])*time.Second), st.Start.Add(time.Duration(busy[len(busy)-1]+1)*time.Second), reps)
		}
		if span := st.Last.Sub(st.First); span > 0 {
			r.rateAll = float64(st.Counted) / span.Seconds()
		}
	}
	var trips int64
	waits := &Histogram{}
	for _, rep := range reps {
		r.reportCalls += rep.Calls
		trips += rep.WaitRoundTrips
		waits.Merge(rep.Waits)
		r.slow += rep.SlowDowns
		if s := rep.Shared; s != nil {
			r.spread = max(r.spread, s.Spread)
			r.interval = max(r.interval, s.Interval)
			r.resets += s.Resets
			r.beyond += s.BeyondHorizon
			r.drops += s.LateDrops
			r.grantDrops += s.LateGrantDrops
			r.wakeDrops += s.LateWakeDrops
			r.connDrops += s.LateConnDrops
			r.compensations += s.Compensations
			r.stalled += s.StalledSamples
		}
	}
	if r.reportCalls > 0 {
		r.opsPerCall = float64(trips) / float64(r.reportCalls)
	}
	r.waitP99, r.haveWaits = waits.Quantile(0.99)
	return r
}

// spacing fills the shared limiter's figures over [from, to): how many
// slots it granted, how many its interval allowed, and how long it idled.
func (r *row) spacing(from, to time.Time, reps []Report) {
	var slots []int64
	var rates []float64
	var spreads, gs []time.Duration
	r.localMin = time.Duration(math.MaxInt64)
	answers := &Histogram{}
	for _, rep := range reps {
		answers.Merge(rep.SlotToAnswer)
		var sumLocal time.Duration
		nLocal := 0
		for _, us := range rep.Slots {
			if t := time.UnixMicro(us); !t.Before(from) && t.Before(to) {
				slots = append(slots, us)
			}
		}
		for _, s := range rep.Samples {
			if t := time.UnixMilli(s.At); !t.Before(from) && t.Before(to) && s.Interval > 0 {
				rates = append(rates, float64(time.Second)/float64(s.Interval))
				spreads = append(spreads, s.Spread)
				if s.Dispersion >= 0 {
					gs = append(gs, s.Dispersion)
				}
				if s.Local > 0 {
					sumLocal += s.Local
					nLocal++
				}
			}
		}
		if nLocal > 0 {
			mean := sumLocal / time.Duration(nLocal)
			r.localMin = min(r.localMin, mean)
			r.localMax = max(r.localMax, mean)
		}
	}
	if r.localMax == 0 {
		r.localMin = 0
	}
	lo, okLo := answers.Quantile(0.005)
	hi, okHi := answers.Quantile(0.995)
	if okLo && okHi {
		r.fleetJ, r.haveFleet = hi-lo, true
	}
	if len(rates) == 0 {
		return
	}
	r.slotRate = float64(len(slots)) / to.Sub(from).Seconds()
	var sumRate float64
	var sumJ time.Duration
	for i := range rates {
		sumRate += rates[i]
		sumJ += spreads[i]
		r.jMax = max(r.jMax, spreads[i])
	}
	r.spaceRate = sumRate / float64(len(rates))
	r.jMean = sumJ / time.Duration(len(spreads))
	if len(gs) > 0 {
		var sumG time.Duration
		for _, g := range gs {
			sumG += g
			r.gMax = max(r.gMax, g)
		}
		r.gMean, r.haveG = sumG/time.Duration(len(gs)), true
	}
	interval := time.Duration(float64(time.Second) / r.spaceRate)
	sort.Slice(slots, func(i, j int) bool { return slots[i] < slots[j] })
	for i := 1; i < len(slots); i++ {
		if gap := time.Duration(slots[i]-slots[i-1]) * time.Microsecond; gap > 2*interval {
			r.idleGaps++
			r.idleTime += gap - interval
		}
	}
}

// line formats the row under headerLine.
func (r row) line() string {
	cells := []string{
		r.limiter,
		fmt.Sprint(r.procs),
		fmt.Sprint(r.concurrency),
		fmt.Sprint(r.tasks),
		fmt.Sprintf("%.1f", r.wall.Seconds()),
		orDash(r.rateBusy, "%.1f"),
		orDash(r.rateBusy/Cap*100, "%.1f%%"),
		fmt.Sprint(r.maxInAny1s),
		fmt.Sprint(r.rejected),
		orDash(r.opsPerCall, "%.2f"),
		"-",
		fmt.Sprint(r.busySeconds),
		fmt.Sprint(r.left),
	}
	if r.haveWaits {
		cells[10] = fmtDuration(r.waitP99)
	}
	for i, c := range columns {
		if i == 0 {
			cells[i] = fmt.Sprintf("%-*s", c.width, cells[i])
		} else {
			cells[i] = fmt.Sprintf("%*s", c.width, cells[i])
		}
	}
	return strings.Join(cells, "  ")
}

// note is the row's detail line, printed under the table.
func (r row) note(st imsim.Stats, reps []Report, missing int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s P=%d: simulator counted %d calls (", r.limiter, r.procs, r.counted)
	codes := make([]int, 0, len(r.byCode))
	for code := range r.byCode {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for i, code := range codes {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%d", code, r.byCode[code])
	}
	fmt.Fprintf(&b, "), workers' permits %d", r.reportCalls)
	if st.MaxInAnyWindowOnTime > 0 {
		// The same calls counted where a server never late would count
		// them: when the simulator read each plus its latency.
		fmt.Fprintf(&b, "; most in any 1 s on time %d (counted %d)", st.MaxInAnyWindowOnTime, st.MaxInAnyWindow)
	}
	if st.MaxReadsInAnyWindow > 0 {
		// The calls by when the simulator read them, before any latency:
		// the workers' sending. A burst shows here; a window the
		// latencies filled does not.
		fmt.Fprintf(&b, ", sent: most in any 1 s %d (ending %.1f s after the first arrival), in any 100 ms %d",
			st.MaxReadsInAnyWindow, st.MaxReadsWindowEnd.Sub(st.First).Seconds(), st.MaxReadsIn100ms)
	}
	if missing > 0 {
		fmt.Fprintf(&b, " (%d report(s) missing)", missing)
	}
	fmt.Fprintf(&b, "; first..last arrival %.2f s, %s/s over it", st.Last.Sub(st.First).Seconds(), orDash(r.rateAll, "%.1f"))
	fmt.Fprintf(&b, "; SlowDowns %d", r.slow)
	if !math.IsNaN(r.spaceRate) {
		fmt.Fprintf(&b, "; shared limiter over the busy seconds: J mean %s max %s (each process's own J, mean: %s..%s",
			fmtDuration(r.jMean), fmtDuration(r.jMax), fmtDuration(r.localMin), fmtDuration(r.localMax))
		if r.haveFleet {
			fmt.Fprintf(&b, "; p99.5-p0.5 of all calls' slot-to-answer times, merged: %s", fmtDuration(r.fleetJ))
		}
		fmt.Fprint(&b, ")")
		if r.haveG {
			fmt.Fprintf(&b, ", dispersion G mean %s max %s", fmtDuration(r.gMean), fmtDuration(r.gMax))
		}
		fmt.Fprintf(&b, ", 1/interval %.1f/s", r.spaceRate)
		if missing == 0 {
			fmt.Fprintf(&b, ", slots granted %.1f/s, %d gaps over 2 intervals (%s idle)", r.slotRate, r.idleGaps, fmtDuration(r.idleTime))
		}
	}
	if r.interval > 0 {
		fmt.Fprintf(&b, "; schedule resets %d, beyond horizon %d; late drops %d (grant %d, wake-up %d, connection %d, before the send %d), stalled samples %d, compensations %d",
			r.resets, r.beyond, r.drops, r.grantDrops, r.wakeDrops, r.connDrops, r.drops-r.grantDrops-r.wakeDrops-r.connDrops, r.stalled, r.compensations)
	}
	return b.String()
}

// busyOf is busySeconds of a configuration: from its first counted call or
// the start of its last worker, whichever came later.
func busyOf(st imsim.Stats, d drainResult, allStarted time.Time) []int {
	if st.First.IsZero() {
		return nil
	}
	from := st.First
	if allStarted.After(from) {
		from = allStarted
	}
	return busySeconds(st.Start, len(st.PerSecond), from, d.samples)
}

// busySeconds returns the indexes of the busy seconds: whole seconds
// [start+i s, start+(i+1) s) with i < seconds that begin at or after from
// and throughout which the queue had tasks pending, that is every sample
// from the last one at or before the second's start to the first one at or
// after its end has pending > 0 (so both exist).
func busySeconds(start time.Time, seconds int, from time.Time, samples []sample) []int {
	var out []int
	first := int(math.Ceil(from.Sub(start).Seconds()))
	for i := max(first, 0); i < seconds; i++ {
		lo := start.Add(time.Duration(i) * time.Second)
		hi := lo.Add(time.Second)
		// the last sample at or before lo
		j := sort.Search(len(samples), func(k int) bool { return samples[k].at.After(lo) }) - 1
		if j < 0 {
			continue
		}
		busy, closed := true, false
		for ; j < len(samples); j++ {
			if samples[j].pending == 0 {
				busy = false
				break
			}
			if !samples[j].at.Before(hi) {
				closed = true
				break
			}
		}
		if busy && closed {
			out = append(out, i)
		}
	}
	return out
}

// recovery is how the rate came back after the kill.
type recovery struct {
	level int           // the median of the whole seconds before the kill's second
	back  int           // the first second, from the kill's on, back at level
	after time.Duration // from the kill to the start of back (0 when back is the kill's second)
}

// levelSeconds is how many whole seconds before the kill's second set the
// pre-kill level, and levelSlack how far below it a second may fall and
// still count as back at level: a count per second at a steady rate moves
// by one call as the seconds' edges fall between two calls.
const (
	levelSeconds = 5
	levelSlack   = 1
)

// recoveryAfter finds, in the counts per second since start, the first
// second from the kill's on whose count is at least the pre-kill level (the
// median of the levelSeconds whole seconds before the kill's second, so a
// pause before the kill does not set it) less levelSlack. The last second is
// left out: it is partial. ok is false without levelSeconds whole seconds
// before the kill's or without such a second.
func recoveryAfter(perSecond []int, start, kill time.Time) (recovery, bool) {
	k := int(kill.Sub(start) / time.Second)
	if k < levelSeconds || k >= len(perSecond) {
		return recovery{}, false
	}
	before := slices.Clone(perSecond[k-levelSeconds : k])
	slices.Sort(before)
	level := before[len(before)/2]
	for j := k; j < len(perSecond)-1; j++ {
		if perSecond[j] >= level-levelSlack {
			after := max(start.Add(time.Duration(j)*time.Second).Sub(kill), 0)
			return recovery{level: level, back: j, after: after}, true
		}
	}
	return recovery{}, false
}

func orDash(v float64, format string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// fmtDuration prints d with three significant figures or so.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
