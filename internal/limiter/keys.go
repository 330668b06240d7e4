package limiter

// keys names every Redis key of one bucket. All of them carry the hash tag
// {lim:<bucket>}, so they live in one Redis Cluster hash slot and one Lua
// script may touch any of them.
type keys struct {
	// gcra is a hash: tat (next free slot, µs of Redis time), pause (no slot
	// before this, µs), srv (run_id of the Redis server that wrote tat).
	gcra string
	// spread is a hash: one field per process, "<n>|<lows>|<highs>|<Redis µs
	// when published>" (see spreadScript). Its name, spread-tails, differs
	// from the "spread" hash of earlier versions ("<spread µs>:<Redis µs>"):
	// in a rolling deploy each version would delete the other's entries as
	// malformed. The old hash expires on its own.
	spread string
}

func newKeys(prefix, bucket string) keys {
	base := prefix + ":{lim:" + bucket + "}:"
	return keys{
		gcra:   base + "gcra",
		spread: base + "spread-tails",
	}
}
