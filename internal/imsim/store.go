package imsim

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// storeShards is the number of independently locked parts of the message
// store, so concurrent recalls of different messages rarely contend.
const storeShards = 64

// msgState is what the store knows of one message.
type msgState uint8

const (
	msgPresent   msgState = iota // exists, not recalled (the open-world default)
	msgRecalled                  // recalled once: later recalls answer 20023
	msgForgotten                 // does not exist: recalls answer 20022
)

// msgEntry is one message's state and every code answered for it.
type msgEntry struct {
	state msgState
	fate  []int32
}

type storeShard struct {
	mu sync.Mutex
	m  map[string]msgEntry
}

// store is the simulator's open-world message store: every account exists
// unless dropped and every message exists unless forgotten. It only holds
// entries for messages something happened to, keyed by (From, To, MsgKey);
// an entry costs about 100 bytes, so a million recalled messages take about
// 100 MB.
type store struct {
	seed   maphash.Seed
	shards [storeShards]storeShard

	accMu   sync.RWMutex
	dropped map[string]struct{}
}

func newStore() *store {
	st := &store{seed: maphash.MakeSeed()}
	st.reset()
	return st
}

// reset forgets every message and dropped account.
func (st *store) reset() {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		sh.m = make(map[string]msgEntry)
		sh.mu.Unlock()
	}
	st.accMu.Lock()
	st.dropped = make(map[string]struct{})
	st.accMu.Unlock()
}

// msgID encodes (from, to, msgKey) as one map key. The two accounts are
// length-prefixed, so no choice of bytes in them makes two triples collide.
func msgID(from, to, msgKey string) string {
	b := make([]byte, 0, len(from)+len(to)+len(msgKey)+4)
	b = binary.AppendUvarint(b, uint64(len(from)))
	b = append(b, from...)
	b = binary.AppendUvarint(b, uint64(len(to)))
	b = append(b, to...)
	b = append(b, msgKey...)
	return string(b)
}

func (st *store) shard(id string) *storeShard {
	return &st.shards[maphash.String(st.seed, id)%storeShards]
}

func (st *store) dropAccount(id string) {
	st.accMu.Lock()
	st.dropped[id] = struct{}{}
	st.accMu.Unlock()
}

func (st *store) isDropped(id string) bool {
	st.accMu.RLock()
	_, ok := st.dropped[id]
	st.accMu.RUnlock()
	return ok
}

// forget makes the message not exist: recalls of it answer 20022.
func (st *store) forget(from, to, msgKey string) {
	id := msgID(from, to, msgKey)
	sh := st.shard(id)
	sh.mu.Lock()
	e := sh.m[id]
	e.state = msgForgotten
	sh.m[id] = e
	sh.mu.Unlock()
}

// recall decides a recall that passed every check before the store, records
// the answer in the message's fate and returns it. When fail is true a call
// that would succeed is answered 91000 instead and the message stays
// unrecalled, as the simulated internal error happened before the recall.
func (st *store) recall(from, to, msgKey string, fail bool) int {
	// Accounts first, then the MsgKey's shape, then the message itself.
	code := codeOK
	switch {
	case st.isDropped(from):
		code = codeBadFromAccount
	case st.isDropped(to):
		code = codeBadToAccount
	case !validMsgKey(msgKey):
		code = codeBadMsgKey
	}
	id := msgID(from, to, msgKey)
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if code == codeOK {
		switch e.state {
		case msgForgotten:
			code = codeMsgNotFound
		case msgRecalled:
			code = codeAlreadyRecalled
		default:
			if fail {
				code = codeInternal
			} else {
				e.state = msgRecalled
			}
		}
	}
	e.fate = append(e.fate, int32(code))
	sh.m[id] = e
	return code
}

// note appends code to the message's fate without changing its state.
func (st *store) note(from, to, msgKey string, code int) {
	id := msgID(from, to, msgKey)
	sh := st.shard(id)
	sh.mu.Lock()
	e := sh.m[id]
	e.fate = append(e.fate, int32(code))
	sh.m[id] = e
	sh.mu.Unlock()
}

// fate returns a copy of every code answered for the message, in order.
func (st *store) fate(from, to, msgKey string) []int {
	id := msgID(from, to, msgKey)
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[id]
	if !ok || len(e.fate) == 0 {
		return nil
	}
	out := make([]int, len(e.fate))
	for i, c := range e.fate {
		out[i] = int(c)
	}
	return out
}

// validMsgKey reports whether k has Tencent's {MsgSeq}_{MsgRandom}_{MsgTime}
// shape: three non-empty runs of ASCII digits joined by underscores, the
// regular expression ^[0-9]+_[0-9]+_[0-9]+$.
func validMsgKey(k string) bool {
	groups, digits := 1, 0
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '_':
			if digits == 0 {
				return false
			}
			groups++
			digits = 0
		default:
			return false
		}
	}
	return groups == 3 && digits > 0
}
