package imsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Tail is a heavy-tailed latency: lognormal with the given median and 99th
// percentile, as a worker one continent away from Tencent sees (a long tail
// of retransmits and slow paths). The zero Tail is none.
type Tail struct {
	Median, P99 time.Duration
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// tailMax bounds one draw: the simulated client gives up after 5 s anyway.
const tailMax = 10 * time.Second

// draw returns one latency.
func (t Tail) draw(rng *rand.Rand) time.Duration {
	sigma := math.Log(float64(t.P99)/float64(t.Median)) / z99
	d := float64(t.Median) * math.Exp(sigma*rng.NormFloat64())
	return min(time.Duration(d), tailMax)
}

// Validate says what is wrong with t, if anything.
func (t Tail) Validate() error {
	if t == (Tail{}) {
		return nil
	}
	if t.Median <= 0 || t.P99 <= t.Median {
		return fmt.Errorf("latency tail %s: the median must be positive and the p99 above it", t)
	}
	return nil
}

// String is the form ParseTail reads: "80ms,600ms".
func (t Tail) String() string { return t.Median.String() + "," + t.P99.String() }

// ParseTail reads "median,p99", e.g. "80ms,600ms".
func ParseTail(s string) (Tail, error) {
	med, p99, ok := strings.Cut(s, ",")
	var t Tail
	var err1, err2 error
	t.Median, err1 = time.ParseDuration(strings.TrimSpace(med))
	t.P99, err2 = time.ParseDuration(strings.TrimSpace(p99))
	if !ok || err1 != nil || err2 != nil {
		return Tail{}, fmt.Errorf("latency tail %q: give median,p99 such as 80ms,600ms", s)
	}
	return t, t.Validate()
}
