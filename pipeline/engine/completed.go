package engine

import (
	"bytes"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A server transaction over UDP that sent its final response must still
// absorb the request's retransmissions for a while (RFC 3261 Timers J and
// L, server.linger): answer a non-INVITE one with the same response, drop
// an INVITE one after a 2xx. sipgo's transaction would do it, but keeps
// both parsed messages, its timers and the engine's transaction with them,
// and at a high call rate those lingering messages were most of the
// proxy's memory and of its collector's work (docs/benchmarks.md). So
// sipgo keeps a transaction only sipgoAbsorb past its final response
// (setLinger), and completed keeps, for the rest of the linger, the key's
// hash and the bytes of the response: what absorbing needs, and nothing
// the collector has to scan. A non-INVITE's final response is sent from
// those bytes, and so are the answers to its retransmissions, each sipgo
// transaction ending as it is sent (writeKept).

// maxCompleted bounds the transactions completed remembers: 5 s of 20000
// answered requests a second, some 100 MB at the most. Past it a request
// is not remembered (its response goes through sipgo's transaction, which
// absorbs sipgoAbsorb), and a retransmission later than that is handled
// as a new request, as one after the linger is.
const maxCompleted = 100000

// The chunks the responses are kept in start at minChunkSize and double
// with each new one up to completedChunkSize, so that a proxy answering a
// request now and then keeps a few KiB, not a MiB.
const (
	minChunkSize       = 4 << 10
	completedChunkSize = 1 << 20
)

// completed remembers the server transactions that ended after their
// final response, until server.linger after it. Nothing it keeps holds a
// pointer but its chunks: as objects of their own (the bytes, the
// destination, a map entry that points to both), the responses of the
// REGISTERs of a busy registrar were most of what the collector marked
// (docs/benchmarks.md).
type completed struct {
	linger time.Duration
	epoch  time.Time // the entries' times are counted from it

	mu sync.Mutex
	m  map[uint64]completedEntry
	// fifo holds the keys in the order they were added, which is the
	// order they expire in: the linger is one for all.
	fifo []completedKey
	head int
	// chunks hold each response kept and its destination, in the order
	// they were added: chunks[i] is chunk number first+i. A chunk is
	// only appended to, and dropped once the entries in it expired.
	chunks [][]byte
	first  uint64
	grow   int // the size of the next chunk
}

// completedEntry is what the table keeps of a transaction.
type completedEntry struct {
	method uint64 // methodHash
	until  int64  // since epoch
	// The final response, as sent, and where it went, for a non-INVITE:
	// n and dn bytes at off in chunk number chunk; n is 0 for an INVITE
	// answered with a 2xx.
	chunk  uint64
	off, n uint32
	dn     uint32
}

// completedTx is what a retransmission of a completed request needs.
type completedTx struct {
	// final is the response sent, as sent, for a non-INVITE; nil for an
	// INVITE answered with a 2xx, whose retransmissions are dropped (the
	// callee retransmits the 2xx itself, RFC 6026).
	final []byte
	dest  string // where the response went, for a non-INVITE
}

// finalBuffers are where add writes a response before it keeps a copy.
var finalBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type completedKey struct {
	hash  uint64
	until int64
	chunk uint64 // the entry's chunk: chunks before it are free once it is
}

func newCompleted(linger time.Duration) *completed {
	return &completed{linger: linger, epoch: time.Now()}
}

// add remembers the server transaction whose key hashes to hash (txKeyHash)
// and that sends res, its final response, in answer to a request of method.
// For a non-INVITE it returns the response's bytes as kept, for the caller
// to send (one serialization for the send and the retransmissions); nil
// for an INVITE, and when the table is full.
func (c *completed) add(hash uint64, method sip.RequestMethod, res *sip.Response, now time.Time) (kept []byte) {
	e := completedEntry{method: methodHash(method), until: int64(now.Sub(c.epoch) + c.linger)}
	var b *bytes.Buffer
	if method != sip.INVITE {
		b = finalBuffers.Get().(*bytes.Buffer)
		b.Reset()
		res.StringWrite(b)
		e.n = uint32(b.Len())
		b.WriteString(res.Destination())
		e.dn = uint32(b.Len()) - e.n
		defer finalBuffers.Put(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	if len(c.m) >= maxCompleted {
		return nil // sipgo still absorbs what comes at once
	}
	if c.m == nil {
		c.m = map[uint64]completedEntry{}
	}
	if b != nil {
		e.chunk, e.off = c.keepLocked(b.Bytes())
		chunk := c.chunks[e.chunk-c.first]
		kept = chunk[e.off : e.off+e.n : e.off+e.n] // no one writes a chunk's bytes again
	} else {
		e.chunk = c.first + uint64(max(len(c.chunks)-1, 0)) // no data: the chunk in use
	}
	c.m[hash] = e
	c.fifo = append(c.fifo, completedKey{hash: hash, until: e.until, chunk: e.chunk})
	return kept
}

// keepLocked copies data into the last chunk, or a new one if it has no
// room, and returns the chunk's number and where in it data is.
func (c *completed) keepLocked(data []byte) (uint64, uint32) {
	if n := len(c.chunks); n > 0 {
		last := c.chunks[n-1]
		if cap(last)-len(last) >= len(data) {
			c.chunks[n-1] = append(last, data...)
			return c.first + uint64(n-1), uint32(len(last))
		}
	}
	if c.grow == 0 {
		c.grow = minChunkSize
	}
	chunk := make([]byte, 0, max(c.grow, len(data)))
	c.grow = min(2*c.grow, completedChunkSize)
	c.chunks = append(c.chunks, append(chunk, data...))
	return c.first + uint64(len(c.chunks)-1), 0
}

// find returns what is remembered of the transaction req retransmits,
// whose key hashes to hash. Only a request of the same method matches: the
// ACK of a 2xx is a transaction of its own, even from a client that gives
// it its INVITE's branch. The response's bytes are the chunk's, which no
// one writes again.
func (c *completed) find(hash uint64, req *sip.Request, now time.Time) (completedTx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	e, ok := c.m[hash]
	if !ok || e.method != methodHash(req.Method) || int64(now.Sub(c.epoch)) >= e.until {
		return completedTx{}, false
	}
	var tx completedTx
	if e.n > 0 {
		chunk := c.chunks[e.chunk-c.first]
		tx.final = chunk[e.off : e.off+e.n : e.off+e.n]
		tx.dest = string(chunk[e.off+e.n : e.off+e.n+e.dn])
	}
	return tx, true
}

// len is the number of transactions remembered.
func (c *completed) len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	return len(c.m)
}

// sweepLocked forgets what expired, and drops the chunks only what
// expired was in. The map, the queue and the chunks are given back once
// empty, since they keep the room a burst made them grow to.
func (c *completed) sweepLocked(now time.Time) {
	at := int64(now.Sub(c.epoch))
	for c.head < len(c.fifo) && at >= c.fifo[c.head].until {
		k := c.fifo[c.head]
		if e, ok := c.m[k.hash]; ok && e.until == k.until {
			delete(c.m, k.hash)
		}
		c.head++
	}
	switch {
	case c.head == len(c.fifo):
		c.fifo, c.head = c.fifo[:0], 0
		c.first += uint64(len(c.chunks))
		c.chunks, c.grow = nil, 0
		if len(c.m) == 0 {
			c.m, c.fifo = nil, nil
		}
		return
	case c.head > len(c.fifo)/2 && c.head > 1024:
		n := copy(c.fifo, c.fifo[c.head:])
		c.fifo, c.head = c.fifo[:n], 0
	}
	if oldest := c.fifo[c.head].chunk; oldest > c.first {
		n := int(oldest - c.first)
		clear(c.chunks[:n])
		c.chunks = c.chunks[n:]
		c.first = oldest
	}
}

// methodHash is what an entry keeps of its request's method. The key's
// hash tells the methods apart (it has the CSeq's) but for the ACK of a
// 2xx given its INVITE's branch, or a request line that names another
// method than its CSeq; this tells those.
func methodHash(method sip.RequestMethod) uint64 {
	return maphash.String(methodSeed, string(method))
}

var methodSeed = maphash.MakeSeed()

// absorbed handles req, a request sipgo made a new server transaction tx
// for, if it retransmits a completed one (its key hashes to hash): an
// INVITE answered with a 2xx is dropped, any other request gets the final
// response again. It reports whether req was such a retransmission.
func (e *Engine) absorbed(req *sip.Request, tx *sip.ServerTx, hash uint64) bool {
	if req.Transport() != "UDP" {
		return false
	}
	c, ok := e.completed.find(hash, req, time.Now())
	if !ok {
		return false
	}
	if c.final == nil {
		e.log.Debug("retransmission of an answered INVITE absorbed", "call_id", callID(req))
		tx.Terminate()
		return true
	}
	if sent, err := writeKept(tx, c.final, c.dest); sent {
		if err != nil {
			e.log.Debug("final response to a retransmission not sent", "call_id", callID(req), "error", err)
		}
		return true
	}
	msg, err := e.parser.ParseSIP(c.final)
	res, isResponse := msg.(*sip.Response)
	if err != nil || !isResponse {
		// It parsed when it came or was made; kept as sent, it cannot fail.
		e.log.Error("final response kept for retransmissions does not parse", "error", err)
		tx.Terminate()
		return true
	}
	res.SetDestination(c.dest)
	res.SetTransport(req.Transport())
	if err := tx.Respond(res); err != nil {
		e.log.Debug("final response to a retransmission not sent", "call_id", callID(req), "error", err)
	}
	return true
}

// writeKept ends sipgo's server transaction tx and sends the final
// response completed kept for it, on tx's socket, to dest: serialized once,
// and absorbed by completed from then on, with no timer or parsed message
// in sipgo. It sends nothing and reports false where tx.Respond must send
// it: no UDP socket, a destination that is no address and port, a
// response too large for UDP.
func writeKept(tx *sip.ServerTx, kept []byte, dest string) (sent bool, err error) {
	conn, ok := tx.Connection().(*sip.UDPConnection)
	if !ok || len(kept) > sip.UDPMTUSize-200 {
		return false, nil
	}
	to, err := netip.ParseAddrPort(dest)
	if err != nil || to.Port() == 0 {
		return false, nil
	}
	// Ended first: a retransmission crossing the response is then a new
	// transaction, which finds the response kept, not this one, which
	// sipgo would let drop it (in Trying) or answer with a provisional.
	// The reference keeps a socket that is no listener open for the
	// write: ending tx releases its own.
	conn.Ref(1)
	tx.Terminate()
	_, err = conn.WriteTo(kept, net.UDPAddrFromAddrPort(to))
	conn.TryClose()
	return true, err
}
