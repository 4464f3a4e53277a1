package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// sipgo keeps its timers, its UDP size limit, its read buffer, its debug
// switch and its tracer in package variables, for the whole process. Every
// one of them the engine changes is set here, by applySipgo, which New
// calls before the engine makes sipgo's layers: a restart changes them,
// never a reload. docs/sipgo.md lists why each is set.

// MaxUDPMessage is the largest SIP message sent or read over UDP. Larger
// than the path MTU, such messages go out IP-fragmented (RFC 3261 18.1.1
// asks for TCP past 1300 bytes, but phones such as Linphone send 1.5-1.8 kB
// video INVITEs over UDP and expect them relayed as they are).
const MaxUDPMessage = 65507

// Options are the engine's settings that sipgo keeps process-wide.
type Options struct {
	// Linger is how long a completed transaction stays to absorb
	// retransmissions (server.linger); 0 means config.DefaultLinger.
	Linger time.Duration
	// Certs are the certificates of the TLS listeners; nil allows none.
	Certs *certs.Store
	// DNS configures the resolver of next hops named by host names (its
	// Supports is the engine's sockets; its Clock, without one, the
	// services').
	DNS resolve.Config
}

// applySipgo sets sipgo's process-wide settings for an engine: the
// message sizes, the timers (see setLinger), Timer G off, and the tracer
// through which the engine logs messages; and sipgo's default logger, which a transport given to sipgo
// (tcpTransport) logs to, is made to log where log does, through the
// quiet handler, unless an engine made it so already (the app runs one;
// tests make several, and sipgo's goroutines read it unguarded). A value
// is written only when it changes, for the same reason.
func applySipgo(linger time.Duration, tr *tracer, log *slog.Logger) {
	if _, quiet := sip.DefaultLogger().Handler().(*quietHandler); !quiet {
		sip.SetDefaultLogger(log.With("layer", "transport"))
	}
	if linger <= 0 {
		linger = config.DefaultLinger
	}
	set(&sip.UDPMTUSize, MaxUDPMessage+200)
	set(&sip.TransportBufferReadSize, 65535)
	setLinger(linger)
	// sipgo's INVITE server transaction retransmits a non-2xx final
	// response on Timer G up to 11 times in 64*T1, to whatever address
	// the request named: a forged source turns that into an amplifier.
	// The engine sends it twice (retransmitFinal); Timer G then fires
	// after Timer H has ended the transaction. The transaction still
	// answers each retransmission of the INVITE, and absorbs the ACK,
	// until Timer H.
	set(&sip.Timer_G, 24*time.Hour)
	set(&sip.SIPDebug, true)
	tracing.Store(tr)
	installTracer()
}

// set writes v to a sipgo setting unless it holds v already.
func set[T comparable](setting *T, v T) {
	if *setting != v {
		*setting = v
	}
}

// sipgo has one tracer for the process. The engine installs one, once,
// that hands every message to the tracer of the engine made last (the
// process runs one; tests make several, one after the other).
var (
	tracing       atomic.Pointer[tracer]
	installTracer = sync.OnceFunc(func() { sip.SIPDebugTracer(forwardTracer{}) })
)

// forwardTracer is the process's sipgo tracer.
type forwardTracer struct{}

func (forwardTracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	if tr := tracing.Load(); tr != nil {
		tr.SIPTraceRead(transport, laddr, raddr, msg)
	}
}

func (forwardTracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	if tr := tracing.Load(); tr != nil {
		tr.SIPTraceWrite(transport, laddr, raddr, msg)
	}
}

// sipgoAbsorb is how long sipgo keeps a transaction that only absorbs
// retransmissions (Timers J, K, L and M): those crossing its final
// response on a fast path. A later one finds the transaction in the
// engine's completed table, through a new sipgo transaction that costs
// more than sipgo's own absorbing; but every transaction kept holds its
// parsed messages, which are most of what the collector marks. At 1000
// calls/s on one core, 50 ms instead of T1 (500 ms) halved the collector's
// mark phases (docs/benchmarks.md).
const sipgoAbsorb = 50 * time.Millisecond

// setLinger sets how long sipgo keeps a completed transaction: Timers D,
// J, L and M, 64*T1 = 32 s in RFC 3261. While it lingers a transaction
// holds its messages and timers, and at a high call rate those decided the
// proxy's memory and much of its garbage collection. So a server
// transaction lingers in sipgo only sipgoAbsorb, after which the engine's
// completed absorbs the retransmissions of its request for the rest of d;
// a client transaction lingers as long (Timers K and M): a response
// retransmitted later matches no transaction, and a 2xx is then relayed
// statelessly (onStrayResponse), the rest dropped. An INVITE client
// transaction that got a non-2xx final keeps d (Timer D): it sends the ACK
// again for each retransmission of that response. An INVITE server
// transaction waits for the ACK of a non-2xx final response d too (Timer
// H, 64*T1 in RFC 3261): the engine sends that response twice within T1
// (retransmitFinal), and a forged source, which never ACKs, would
// otherwise hold the transaction 32 s.
func setLinger(d time.Duration) {
	short := min(d, sipgoAbsorb)
	set(&sip.Timer_D, d)
	// At least 4*T1: the two sends of a final response, and an INVITE
	// retransmitted after both were lost (at T1, 2*T1, 4*T1), still find
	// the transaction.
	set(&sip.Timer_H, max(d, 4*sip.T1))
	set(&sip.Timer_J, short)
	set(&sip.Timer_K, short)
	set(&sip.Timer_L, short)
	set(&sip.Timer_M, short)
}
