// Package keepalive pings the bindings of phones behind NAT: an OPTIONS
// request every interval, from the socket their REGISTER came in on, to
// the address it came from, keeps the NAT's mapping open so that calls
// reach the phone, and a binding that leaves its pings unanswered too long
// is removed. The Pinger outlives every pipeline: the engine holds one,
// the registrar tells it which bindings to ping.
package keepalive

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// BranchPrefix starts the Via branch of every ping, so that an answer is
// told from a stray response by its branch alone.
const BranchPrefix = "z9hG4bK-sbka-"

// Flow is a binding behind NAT to ping: the binding's identity, where the
// pings go, and the settings of the registrar that bound it.
type Flow struct {
	// AOR, Contact, Instance and RegID name the binding, as the location
	// store keeps it; CallID and CSeq are those of the REGISTER that
	// wrote it, so that a binding written since (a refresh through
	// another node) is never removed for this one's silence.
	AOR, Contact, Instance, RegID string
	CallID                        string
	CSeq                          uint32
	// Received is the address the REGISTER came from: the NAT's mapping.
	Received netip.AddrPort
	// Local is the UDP socket the REGISTER came in on; the pings leave
	// from it, since a NAT lets in only what comes from where its phone
	// sent. Invalid: the engine's choice.
	Local netip.AddrPort
	// Expires is when the binding lapses: the pings stop then.
	Expires time.Time
	// Interval is the time between pings; Timeout how long the binding
	// may stay silent (no answer to a ping, no REGISTER) before it is
	// removed.
	Interval, Timeout time.Duration
	// Log is the registrar's logger, which names its stage.
	Log *slog.Logger
}

// key names a flow's binding in the Pinger.
func (f *Flow) key() string {
	return f.AOR + "\x00" + f.Contact + "\x00" + f.Instance + "\x00" + f.RegID
}

// Ping is one OPTIONS for the engine to send.
type Ping struct {
	Flow
	// Branch, CallID and Seq make the request; an answer is found by
	// Branch.
	Branch, CallID string
	Seq            uint32
}

// Status is a pinged binding as the admin API shows it.
type Status struct {
	AOR        string    `json:"aor"`
	Contact    string    `json:"contact"`
	Received   string    `json:"received"`
	Local      string    `json:"local,omitempty"`
	Interval   float64   `json:"interval_seconds"`
	Timeout    float64   `json:"timeout_seconds"`
	LastPing   time.Time `json:"last_ping,omitzero"`
	LastAnswer time.Time `json:"last_answer,omitzero"`
	// Unanswered counts the pings sent since the last answer.
	Unanswered int `json:"unanswered"`
}

// Removal is a binding the Pinger removed for its silence.
type Removal struct {
	Status
	At time.Time `json:"at"`
}

// Pinger keeps the flows to ping, each due at its next ping.
type Pinger struct {
	// store is the location store, read when a binding is removed.
	store func() location.Store
	// send writes a ping; count counts an event (metrics.Keepalive*).
	send  func(Ping) error
	count func(event string)
	log   *slog.Logger

	mu       sync.Mutex
	flows    map[string]*entry
	byAOR    map[string]map[string]*entry
	byBranch map[string]*entry
	due      dueHeap
	seq      uint64
	prefix   string
	removed  []Removal // the last maxRemovals, newest last
	wake     chan struct{}
	// restorers, restored, retryAt, failed and synced are the restore
	// from the location store (restore.go).
	restorers []*Restorer
	restored  bool
	retryAt   time.Time
	failed    bool
	synced    map[string]bool
}

// maxRemovals is how many removals the admin API lists.
const maxRemovals = 100

// entry is a flow with its state.
type entry struct {
	Flow
	key        string
	next       time.Time // when the next ping is due
	heard      time.Time // the last answer, or the REGISTER
	lastPing   time.Time
	lastAnswer time.Time
	unanswered int
	branch     string // of the last ping
	// callID and seq are the Call-ID and CSeq of the pings: one Call-ID
	// per flow, its CSeq counting up.
	callID string
	seq    uint32
	index  int // in the heap
}

// New returns a Pinger that sends pings with send, removes silent
// bindings from the store that store returns and counts events with
// count.
func New(store func() location.Store, send func(Ping) error, count func(event string), log *slog.Logger) *Pinger {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return &Pinger{
		store: store, send: send, count: count, log: log,
		flows: map[string]*entry{}, byAOR: map[string]map[string]*entry{}, byBranch: map[string]*entry{},
		prefix: BranchPrefix + hex.EncodeToString(r[:]) + "-",
		wake:   make(chan struct{}, 1),
	}
}

// Sync makes the flows of aor those of watch, bound by a REGISTER at now,
// and those already pinged whose binding is still in bindings, written by
// the same REGISTER: a binding removed, or written since by a REGISTER
// that did not come from behind NAT through this node, is pinged no more.
func (p *Pinger) Sync(aor string, bindings []location.Binding, watch []Flow, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.synced != nil {
		p.synced[aor] = true
	}
	if len(watch) == 0 && len(p.byAOR[aor]) == 0 {
		return // not behind NAT, before or now: most REGISTERs
	}
	bound := make(map[string]location.Binding, len(bindings))
	for _, b := range bindings {
		f := Flow{AOR: aor, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID()}
		bound[f.key()] = b
	}
	for key, en := range p.byAOR[aor] {
		if b, ok := bound[key]; !ok || b.CallID != en.CallID || b.CSeq != en.CSeq {
			p.drop(en)
		}
	}
	for _, f := range watch {
		f.AOR = aor
		p.watch(f, now, now.Add(f.Interval))
	}
	if len(watch) > 0 {
		p.poke() // a flow watched anew may be due before the timer
	}
}

// watch pings f from next on, heard at heard. p.mu is held.
func (p *Pinger) watch(f Flow, heard, next time.Time) {
	key := f.key()
	en := p.flows[key]
	if en == nil {
		p.seq++
		en = &entry{key: key, index: -1, callID: p.prefix[len(BranchPrefix):] + strconv.FormatUint(p.seq, 36)}
		p.flows[key] = en
		if p.byAOR[f.AOR] == nil {
			p.byAOR[f.AOR] = map[string]*entry{}
		}
		p.byAOR[f.AOR][key] = en
	}
	en.Flow = f
	en.heard = heard
	en.next = next
	if en.index < 0 {
		heap.Push(&p.due, en)
	} else {
		heap.Fix(&p.due, en.index)
	}
}

// poke wakes Run to look at what is due again.
func (p *Pinger) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// drop forgets en. p.mu is held.
func (p *Pinger) drop(en *entry) {
	delete(p.flows, en.key)
	if m := p.byAOR[en.AOR]; m != nil {
		delete(m, en.key)
		if len(m) == 0 {
			delete(p.byAOR, en.AOR)
		}
	}
	if en.branch != "" {
		delete(p.byBranch, en.branch)
	}
	if en.index >= 0 {
		heap.Remove(&p.due, en.index)
	}
}

// Answered notes a response to the ping whose Via branch is branch, of
// any status (a phone may answer OPTIONS 404 or 405): the NAT is open. It
// reports whether branch was a ping's.
func (p *Pinger) Answered(branch string, now time.Time) bool {
	if len(branch) < len(BranchPrefix) || branch[:len(BranchPrefix)] != BranchPrefix {
		return false
	}
	p.mu.Lock()
	en := p.byBranch[branch]
	if en != nil {
		delete(p.byBranch, branch)
		en.branch = ""
		en.heard, en.lastAnswer, en.unanswered = now, now, 0
	}
	p.mu.Unlock()
	if en != nil {
		p.count(metrics.KeepaliveAnswer)
	}
	return true
}

// Tick sends the pings due by now and removes the bindings silent past
// their timeout. It returns when the next ping is due (zero for none).
func (p *Pinger) Tick(now time.Time) time.Time {
	var pings []Ping
	var silent []*entry
	p.mu.Lock()
	for len(p.due) > 0 && !p.due[0].next.After(now) {
		en := p.due[0]
		switch {
		case !now.Before(en.Expires):
			p.drop(en) // the store sweeps the binding
		case !en.lastPing.IsZero() && now.Sub(en.heard) >= en.Timeout:
			p.drop(en)
			silent = append(silent, en)
		default:
			if en.branch != "" {
				delete(p.byBranch, en.branch)
			}
			p.seq++
			en.seq++
			en.branch = p.prefix + strconv.FormatUint(p.seq, 36)
			p.byBranch[en.branch] = en
			en.lastPing = now
			en.unanswered++
			en.next = now.Add(en.Interval)
			heap.Fix(&p.due, 0)
			pings = append(pings, Ping{Flow: en.Flow, Branch: en.branch, CallID: en.callID, Seq: en.seq})
		}
	}
	next := time.Time{}
	if len(p.due) > 0 {
		next = p.due[0].next
	}
	p.mu.Unlock()
	for _, pg := range pings {
		if err := p.send(pg); err != nil {
			p.logger(&pg.Flow).Debug("keepalive not sent", "aor", pg.AOR, "received", pg.Received.String(), "error", err)
			continue
		}
		p.count(metrics.KeepalivePing)
	}
	for _, en := range silent {
		p.remove(en, now)
	}
	return next
}

// remove takes en's binding out of the store, unless a REGISTER wrote it
// since, and logs and counts the removal.
func (p *Pinger) remove(en *entry, now time.Time) {
	store := p.store()
	if store == nil {
		return
	}
	removed := false
	_, err := store.Update(en.AOR, now, func(current []location.Binding) ([]location.Binding, error) {
		kept := make([]location.Binding, 0, len(current))
		for _, b := range current {
			if b.Contact == en.Contact && b.Instance == en.Instance && b.RegID() == en.RegID && b.CallID == en.CallID && b.CSeq == en.CSeq {
				removed = true
				continue
			}
			kept = append(kept, b)
		}
		return kept, nil
	})
	log := p.logger(&en.Flow)
	if err != nil {
		log.Error("removing a binding whose keepalives went unanswered", "aor", en.AOR, "contact", en.Contact, "error", err)
		return
	}
	if !removed {
		return
	}
	log.Info("binding removed: keepalives unanswered", "aor", en.AOR, "contact", en.Contact, "received", en.Received.String(),
		"unanswered", en.unanswered, "silent", now.Sub(en.heard).Round(time.Millisecond).String())
	p.count(metrics.KeepaliveRemoved)
	p.mu.Lock()
	p.removed = append(p.removed, Removal{Status: en.status(), At: now})
	if len(p.removed) > maxRemovals {
		p.removed = p.removed[len(p.removed)-maxRemovals:]
	}
	p.mu.Unlock()
}

func (p *Pinger) logger(f *Flow) *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return p.log
}

// Run restores the flows from the location store (Restore) and pings,
// until stop is closed.
func (p *Pinger) Run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		retry := p.restore(now)
		next := p.Tick(now)
		wait := time.Hour
		for _, at := range []time.Time{next, retry} {
			if !at.IsZero() {
				wait = min(wait, max(time.Until(at), 0))
			}
		}
		t.Reset(wait)
		select {
		case <-stop:
			return
		case <-p.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
	}
}

// Flows returns the bindings pinged, and the last ones removed.
func (p *Pinger) Flows() (pinged []Status, removed []Removal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pinged = make([]Status, 0, len(p.flows))
	for _, en := range p.flows {
		pinged = append(pinged, en.status())
	}
	return pinged, append([]Removal(nil), p.removed...)
}

// status is en as the admin API shows it. p.mu is held.
func (en *entry) status() Status {
	s := Status{
		AOR: en.AOR, Contact: en.Contact, Received: en.Received.String(),
		Interval: en.Interval.Seconds(), Timeout: en.Timeout.Seconds(),
		LastPing: en.lastPing, LastAnswer: en.lastAnswer, Unanswered: en.unanswered,
	}
	if en.Local.IsValid() {
		s.Local = en.Local.String()
	}
	return s
}

// dueHeap orders entries by their next ping.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	en := x.(*entry)
	en.index = len(*h)
	*h = append(*h, en)
}
func (h *dueHeap) Pop() any {
	old := *h
	en := old[len(old)-1]
	old[len(old)-1] = nil
	en.index = -1
	*h = old[:len(old)-1]
	return en
}
