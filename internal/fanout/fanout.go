// Package fanout runs one function over many items, a bounded number at a
// time, stopping at the first error (the lab queues a campaign's recalls
// and reads back their fates with it; the campaign feeder queues a batch
// with it).
package fanout

import (
	"context"
	"sync"
)

// Each calls fn(ctx, i) for every i in [0, n), width calls at a time. The
// first error fn returns cancels the ctx the other calls get and stops
// handing out items. Each returns that error, or ctx.Err() if ctx ended
// before every item was handed out, or nil.
func Each(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var firstErr error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
