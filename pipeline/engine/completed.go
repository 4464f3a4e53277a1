package engine

import (
	"bytes"
	"strings"
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
// the collector has to scan.

// maxCompleted bounds the transactions completed remembers: 5 s of 20000
// answered requests a second, some 100 MB at the most. Past it a request
// is not remembered, and a retransmission later than sipgoAbsorb is handled
// as a new request, as one after the linger is.
const maxCompleted = 100000

// completed remembers the server transactions that ended after their
// final response, until server.linger after it.
type completed struct {
	linger time.Duration

	mu sync.Mutex
	m  map[uint64]completedTx
	// fifo holds the keys in the order they were added, which is the
	// order they expire in: the linger is one for all.
	fifo []completedKey
	head int
}

// completedTx is what a retransmission of a completed request needs.
type completedTx struct {
	method sip.RequestMethod
	// final is the response sent, as sent, for a non-INVITE; nil for an
	// INVITE answered with a 2xx, whose retransmissions are dropped (the
	// callee retransmits the 2xx itself, RFC 6026).
	final []byte
	dest  string // where the response went, for a non-INVITE
	until time.Time
}

// finalBuffers are where add writes a response before it keeps a copy of
// the exact size: a buffer grown by doubling keeps up to twice that.
var finalBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type completedKey struct {
	hash  uint64
	until time.Time
}

func newCompleted(linger time.Duration) *completed {
	return &completed{linger: linger}
}

// add remembers the server transaction whose key hashes to hash (txKeyHash)
// and that sent res, its final response, in answer to a request of method.
func (c *completed) add(hash uint64, method sip.RequestMethod, res *sip.Response, now time.Time) {
	e := completedTx{method: constMethod(method), until: now.Add(c.linger)}
	if method != sip.INVITE {
		e.dest = res.Destination() // a string made anew for each call: only a resend needs it
		b := finalBuffers.Get().(*bytes.Buffer)
		b.Reset()
		res.StringWrite(b)
		e.final = bytes.Clone(b.Bytes()) // as long as the response, no room to spare
		finalBuffers.Put(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	if len(c.m) >= maxCompleted {
		return // sipgo still absorbs what comes at once
	}
	if c.m == nil {
		c.m = map[uint64]completedTx{}
	}
	c.m[hash] = e
	c.fifo = append(c.fifo, completedKey{hash: hash, until: e.until})
}

// constMethod returns method as one of sipgo's constants when it is one:
// a method parsed from a request is a slice of its start line, which an
// entry would otherwise keep for the linger.
func constMethod(method sip.RequestMethod) sip.RequestMethod {
	for _, m := range knownMethods {
		if m == method {
			return m
		}
	}
	return sip.RequestMethod(strings.Clone(string(method)))
}

var knownMethods = [...]sip.RequestMethod{sip.INVITE, sip.BYE, sip.REGISTER, sip.OPTIONS, sip.ACK, sip.CANCEL,
	sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.MESSAGE, sip.INFO, sip.UPDATE, sip.PRACK, sip.PUBLISH}

// find returns what is remembered of the transaction req retransmits,
// whose key hashes to hash. Only a request of the same method matches: the
// ACK of a 2xx is a transaction of its own, even from a client that gives
// it its INVITE's branch.
func (c *completed) find(hash uint64, req *sip.Request, now time.Time) (completedTx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	e, ok := c.m[hash]
	if !ok || e.method != req.Method || !now.Before(e.until) {
		return completedTx{}, false
	}
	return e, true
}

// len is the number of transactions remembered.
func (c *completed) len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	return len(c.m)
}

// sweepLocked forgets what expired. The map and the queue are given back
// once empty, since both keep the room a burst made them grow to.
func (c *completed) sweepLocked(now time.Time) {
	for c.head < len(c.fifo) && !now.Before(c.fifo[c.head].until) {
		k := c.fifo[c.head]
		if e, ok := c.m[k.hash]; ok && e.until.Equal(k.until) {
			delete(c.m, k.hash)
		}
		c.head++
	}
	switch {
	case c.head == len(c.fifo):
		c.fifo, c.head = c.fifo[:0], 0
		if len(c.m) == 0 {
			c.m, c.fifo = nil, nil
		}
	case c.head > len(c.fifo)/2 && c.head > 1024:
		n := copy(c.fifo, c.fifo[c.head:])
		c.fifo, c.head = c.fifo[:n], 0
	}
}

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
