package imsim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestTailDrawsTheMedianAndP99(t *testing.T) {
	t.Parallel()
	tail, err := ParseTail("80ms,600ms")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	d := make([]time.Duration, 100000)
	for i := range d {
		d[i] = tail.draw(rng)
	}
	slices.Sort(d)
	if med := d[len(d)/2]; med < 76*time.Millisecond || med > 84*time.Millisecond {
		t.Errorf("median %s, want about 80ms", med)
	}
	if p99 := d[len(d)*99/100]; p99 < 540*time.Millisecond || p99 > 660*time.Millisecond {
		t.Errorf("p99 %s, want about 600ms", p99)
	}
	for _, bad := range []string{"80ms", "600ms,80ms", "x,y"} {
		if _, err := ParseTail(bad); err == nil {
			t.Errorf("ParseTail(%q) succeeded", bad)
		}
	}
}
