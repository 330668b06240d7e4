package limiter

import "strconv"

// BucketName is the one name of the bucket that caps api's calls for the
// app with SDKAppID app, e.g. "1400000000:admin_msgwithdraw": every process
// that calls api for app must share it. Keys are <prefix>:{lim:<name>}:....
func BucketName(app uint64, api string) string {
	return strconv.FormatUint(app, 10) + ":" + api
}

// keys names every Redis key of one bucket. All of them carry the hash tag
// {lim:<bucket>}, so they live in one Redis Cluster hash slot and one Lua
// script may touch any of them.
type keys struct {
	// gcra is a hash: tat (next free slot, µs of Redis time), pause (no slot
	// before this, µs), srv (run_id of the Redis server that wrote tat).
	gcra string
	// spread is a hash: one field per process, "<n>|<lows>|<highs>|<sketch>|
	// <Redis µs when published>" (see spreadScript). Its name, spread-q,
	// differs from the hashes of earlier versions ("spread", "spread-tails",
	// "spread-hist", other forms): in a rolling deploy each version would
	// delete or misread the other's entries. The old hashes expire on their
	// own.
	spread string
	// flow is a hash: per flowWidth of Redis time, the slots granted (by
	// slot time) and the rate-limit answers reported (by report time), in
	// a ring of flowBuckets fields each (see flowLua).
	flow string
	// pace is a string, "<J µs>|<G µs>": the fleet's spread and dispersion
	// last measured, kept paceMemory, which a fleet with no live samples
	// paces from (spreadScript).
	pace string
}

func newKeys(prefix, bucket string) keys {
	base := prefix + ":{lim:" + bucket + "}:"
	return keys{
		gcra:   base + "gcra",
		spread: base + "spread-q",
		flow:   base + "flow",
		pace:   base + "pace",
	}
}
