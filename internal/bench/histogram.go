package bench

import (
	"math/bits"
	"slices"
	"sync"
	"time"
)

// Histogram counts durations in logarithmic buckets of microseconds, as HDR
// histograms do with two significant digits: values below 128 µs are exact,
// larger ones fall in buckets 1/64 of their magnitude wide, so a quantile is
// off by less than 1.6%. Histograms of several processes merge by adding
// their counts. The zero value is empty and ready to use; it is safe for
// concurrent use.
type Histogram struct {
	mu sync.Mutex
	// Counts maps a bucket index (see bucketOf) to its count.
	Counts map[int]int64 `json:"counts"`
}

// subBuckets is the number of buckets per power of two above 128 µs.
const subBuckets = 64

// bucketOf returns the index of the bucket that holds v µs: v itself below
// 2*subBuckets, then subBuckets buckets per power of two.
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // v>>shift lies in [64, 128)
	return shift*subBuckets + int(v>>shift)
}

// bucketMax returns the largest value, in µs, bucket i holds.
func bucketMax(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<shift - 1
}

// Record adds one duration; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Counts == nil {
		h.Counts = make(map[int]int64)
	}
	h.Counts[bucketOf(us)]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts := make(map[int]int64, len(o.Counts))
	for i, n := range o.Counts {
		counts[i] = n
	}
	o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Counts == nil {
		h.Counts = make(map[int]int64)
	}
	for i, n := range counts {
		h.Counts[i] += n
	}
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile returns the upper bound of the bucket that holds the q-quantile
// (0 < q <= 1), and false when h is empty.
func (h *Histogram) Quantile(q float64) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var total int64
	idx := make([]int, 0, len(h.Counts))
	for i, c := range h.Counts {
		total += c
		idx = append(idx, i)
	}
	if total == 0 {
		return 0, false
	}
	slices.Sort(idx)
	// The rank of the q-quantile, 1-based: the smallest value with at
	// least q of the samples at or below it.
	rank := int64(q * float64(total))
	if float64(rank) < q*float64(total) {
		rank++
	}
	rank = min(max(rank, 1), total)
	var seen int64
	for _, i := range idx {
		seen += h.Counts[i]
		if seen >= rank {
			return time.Duration(bucketMax(i)) * time.Microsecond, true
		}
	}
	return time.Duration(bucketMax(idx[len(idx)-1])) * time.Microsecond, true
}
