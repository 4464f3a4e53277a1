// Package engine binds sipgo's transport and transaction layers to a
// Pipeline: it owns the sockets, pins the current Pipeline for every
// transaction, runs the request stages, and is the proxy core of RFC 3261
// section 16 (route processing, forking, the response context, CANCEL).
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/guard"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// Engine is a running proxy.
type Engine struct {
	// UDPReceiveBuffer is the receive buffer Listen asks for each UDP
	// socket, in bytes; 0 or less leaves the kernel's default.
	UDPReceiveBuffer int
	// Descriptors is the limit on open files (RLIMIT_NOFILE), from which
	// the default caps on connections are derived; 0 leaves them off.
	Descriptors uint64

	guard *guard.Guard
	certs *certs.Store
	tp    *sip.TransportLayer
	txl   *sip.TransactionLayer
	log   *slog.Logger
	svc   *pipeline.Services

	// resolver finds the addresses of next hops named by host names;
	// dialed hands sipgo the TLS connections dialTLSName opened, one dial
	// at a time per address (tlsDials).
	resolver *resolve.Resolver
	dialed   *dialedListener
	tlsDials sync.Map

	// dialogs are the services' dialog store, or one of the engine's own.
	dialogs dialog.Store
	// rejects bounds the stateless answers to requests that do not parse
	// or are too large: a flood of garbage must not become a flood of
	// answers.
	rejects *logGate

	current atomic.Pointer[pipeline.Pipeline]
	// stopped is the pipeline Shutdown took out of service, which
	// Pipeline still returns for the admin API.
	stopped atomic.Pointer[pipeline.Pipeline]

	// parseWatches are the UDP sockets, for answerUnparsable.
	parseWatches atomic.Pointer[[]*parseWatch]
	// tagSeed makes the To tags of stateless answers (localTag).
	tagSeed maphash.Seed

	sockets     []boundSocket
	shares      atomic.Pointer[[]*readerShare] // of the UDP sockets, for inTurn
	parser      *sip.Parser
	traceParser *sip.Parser
	invites     sync.Map // inviteKey -> *transaction, for CANCEL matching
	// calls keeps the messages of each call in arrival order (callOrder);
	// branches finds the open branch a response answers (branchKey).
	calls    *callOrder
	branches sync.Map
	// unanswered keeps the branches sent over stream connections until
	// their first response, to end them if the connection closes (the
	// Guard tells of the connections it accepted).
	unanswered flowBranches
	// abandoned keeps the branches the proxy gave up on (branchKey ->
	// *abandoned) while a late answer may come, which lateStray handles.
	abandoned sync.Map
	// answeredHops keeps where 2xx responses came from (noteAnswer), for
	// their ACKs.
	answeredHops sync.Map
	// answered2xx2543 holds the branch hashes of the RFC 2543 INVITE
	// transactions that sent a 2xx, until they end: their ACKs get a
	// branch of their own (markRFC2543).
	answered2xx2543 sync.Map
	// linger is server.linger; completed absorbs the retransmissions of
	// the requests answered over UDP for that long, once sipgo ended
	// their transactions.
	linger    time.Duration
	completed *completed
	active    atomic.Int64 // transactions without a final response
	lingering atomic.Int64 // transactions answered, not yet ended
	bySource  inviteCounts // INVITEs in flight by source address
	byCallee  inviteCounts // INVITEs in flight by called user
	refused   refusals     // the answers of refuse, for retransmissions
	overload  *overload    // sheds new calls while messages queue (overload.go)
	draining  atomic.Bool
	stop      chan struct{}
	workers   *workers
	timers    timers // retransmissions of final responses
	release   *floodRelease
	wg        sync.WaitGroup
	closers   []func() error
	captures  *captures
	// socketsServed is set once sipgo serves every UDP socket (awaitSockets).
	socketsServed atomic.Bool
}

// boundSocket is one listening socket.
type boundSocket struct {
	pipeline.Socket
	local sip.Addr // the listener's own address, as sipgo's pool keys it
}

// New returns an engine for the given services, with sipgo's process-wide
// settings applied for opts (applySipgo). Listen opens its sockets.
func New(svc *pipeline.Services, log *slog.Logger, opts Options) (*Engine, error) {
	e := &Engine{
		log: log, svc: svc,
		parser: newParser(), traceParser: newParser(),
		stop:    make(chan struct{}),
		workers: newWorkers(),
		calls:   newCallOrder(),
		release: newFloodRelease(),
		rejects: &logGate{limit: 100},
		tagSeed: maphash.MakeSeed(),
		certs:   opts.Certs,
	}
	e.linger = opts.Linger
	if e.linger <= 0 {
		e.linger = config.DefaultLinger
	}
	e.completed = newCompleted(e.linger)
	e.overload = newOverload(e.overloadDelay, log)
	e.captures = newCaptures(log)
	e.guard = guard.New(guard.Limits{}, log.With("layer", "connections"))
	e.guard.OnClose(e.unanswered.closed)
	dns := opts.DNS
	dns.Supports = e.supports
	if dns.Clock == nil {
		dns.Clock = svc.Now
	}
	resolver, err := resolve.New(dns)
	if err != nil {
		return nil, err
	}
	e.resolver = resolver
	svc.Outbound = e // health checks of destination sets go out through the engine
	e.dialogs = svc.Dialogs
	if e.dialogs == nil {
		e.dialogs = dialog.NewMemory()
	}
	sipgoLog := slog.New(newQuietHandler(log.Handler()))
	applySipgo(e.linger, &tracer{e: e, log: log}, sipgoLog)
	// The layers are made here rather than by sipgo.NewUA so that
	// onMessage sees each message before the transaction layer does.
	var dialTLS *tls.Config
	if e.certs != nil {
		dialTLS = e.certs.ClientConfig()
	}
	e.tp = sip.NewTransportLayer(net.DefaultResolver, newParser(), dialTLS,
		sip.WithTransportLayerLogger(sipgoLog.With("layer", "transport")),
		sip.WithTransportLayerReadFilter(e.readFilter),
		sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: e.tcpTransport(), TLS: e.tlsTransport(), WS: e.wsTransport(), WSS: e.wssTransport()}),
	)
	e.tp.OnMessage(e.onMessage)
	e.tp.OnMessage(e.delivered)
	e.txl = sip.NewTransactionLayer(e.tp,
		sip.WithTransactionLayerLogger(sipgoLog.With("layer", "transaction")),
		sip.WithTransactionLayerUnhandledResponseHandler(e.onStrayResponse),
	)
	e.txl.OnRequest(e.handOver)
	e.newKeepalive()
	svc.Sender = e
	return e, nil
}

// overloadDelay is the current config's server.overload_delay.
func (e *Engine) overloadDelay() time.Duration {
	if p := e.current.Load(); p != nil && p.Config != nil {
		return p.Config.Server.OverloadDelay.D()
	}
	return 0
}

// Listen binds every socket. It fails, closing what it opened, when one
// cannot be bound. The bound addresses (with ports picked by the kernel for
// port 0) are added to the services' sockets.
func (e *Engine) Listen(listens []config.Listen) error {
	for _, l := range listens {
		if err := e.listen(l); err != nil {
			e.closeSockets()
			return fmt.Errorf("listen %s: %w", l, err)
		}
	}
	e.svc.Sockets = e.svc.Sockets[:0]
	for _, s := range e.sockets {
		e.svc.Sockets = append(e.svc.Sockets, s.Socket)
	}
	return nil
}

func (e *Engine) listen(l config.Listen) error {
	network := l.Network
	ip := net.ParseIP(l.Host)
	if ip == nil || ip.To4() != nil {
		network += "4"
		if ip == nil {
			l.Host = "0.0.0.0"
		}
	} else {
		network += "6"
	}
	switch l.Network {
	case "udp":
		conn, err := net.ListenPacket(network, l.Addr())
		if err != nil {
			return err
		}
		udp := conn.(*net.UDPConn)
		ap := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		e.setReceiveBuffer(udp, ap)
		e.addSocket("UDP", ap, l.Advertise)
		e.closers = append(e.closers, conn.Close)
		share := e.watchParses(e.addShare(rawUDPConn(udp)))
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := e.tp.ServeUDP(share); err != nil && !errors.Is(err, net.ErrClosed) {
				e.log.Error("udp socket stopped", "addr", ap.String(), "error", err)
			}
		}()
	case "tcp":
		ln, err := net.Listen(network, l.Addr())
		if err != nil {
			return err
		}
		ln = e.guard.Listen(ln)
		ap := ln.Addr().(*net.TCPAddr).AddrPort()
		e.addSocket("TCP", ap, l.Advertise)
		e.serveStream("tcp", ln, ap, e.tp.ServeTCP)
	case "tls":
		return e.listenTLS(network, l)
	case "ws", "wss":
		return e.listenWS(network, l)
	}
	return nil
}

// serveStream serves a stream listener until it closes. serve returns
// only when Accept fails: the guard's listener retries every error but a
// close.
func (e *Engine) serveStream(name string, ln net.Listener, ap netip.AddrPort, serve func(net.Listener) error) {
	e.closers = append(e.closers, ln.Close)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := serve(ln); !errors.Is(err, net.ErrClosed) {
			e.log.Error(name+" socket stopped", "addr", ap.String(), "error", err)
		}
	}()
}

// setReceiveBuffer asks the kernel for a UDP socket receive buffer of
// UDPReceiveBuffer bytes, as Kamailio does up to its maxbuffer: while the
// proxy is busy, datagrams wait there instead of being dropped. The kernel
// caps it at net.core.rmem_max, which the log line then names.
func (e *Engine) setReceiveBuffer(conn *net.UDPConn, ap netip.AddrPort) {
	want := e.UDPReceiveBuffer
	if want <= 0 {
		return
	}
	if err := conn.SetReadBuffer(want); err != nil {
		e.log.Warn("udp receive buffer not set", "addr", ap.String(), "bytes", want, "error", err)
		return
	}
	if got := receiveBuffer(conn); got < want {
		e.log.Warn("udp receive buffer smaller than asked: raise net.core.rmem_max (sysctl)", "addr", ap.String(), "asked", want, "granted", got)
	}
}

// receiveBuffer returns the receive buffer the kernel granted a socket,
// or 1<<30 when it cannot tell.
func receiveBuffer(conn *net.UDPConn) int {
	got := 1 << 30
	if raw, err := conn.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			if n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
				got = n / 2 // Linux reports twice what it grants the data
			}
		})
	}
	return got
}

func (e *Engine) addSocket(transport string, ap netip.AddrPort, advertise string) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	e.sockets = append(e.sockets, boundSocket{
		Socket: pipeline.Socket{Transport: transport, Addr: ap, Advertise: advertise},
		local:  sip.Addr{IP: net.IP(ap.Addr().AsSlice()), Port: int(ap.Port())},
	})
	e.log.Info("listening", "transport", strings.ToLower(transport), "addr", ap.String())
}

// Sockets returns the bound sockets.
func (e *Engine) Sockets() []pipeline.Socket {
	out := make([]pipeline.Socket, len(e.sockets))
	for i, s := range e.sockets {
		out[i] = s.Socket
	}
	return out
}

// Use makes p the pipeline for every new transaction. The one it replaces
// keeps serving its own transactions and is cleaned up once the last ends.
func (e *Engine) Use(p *pipeline.Pipeline) {
	if p != nil && p.Config != nil {
		e.guard.SetLimits(ConnectionLimits(p.Config.Server, e.Descriptors))
	}
	old := e.current.Swap(p)
	if old == nil || old == p {
		return
	}
	go func() {
		old.Wait()
		if err := old.Cleanup(); err != nil {
			e.log.Error("retiring pipeline", "error", err)
		}
	}()
}

// InFlight returns the number of server transactions without a final
// response yet.
func (e *Engine) InFlight() int64 { return e.active.Load() }

// Lingering returns the number of transactions that sent their final
// response and have not ended, with their messages: sipgo keeps an
// INVITE sipgoAbsorb (setLinger; a non-INVITE over UDP ends as its final
// response is sent, writeKept), an INVITE answered non-2xx until its ACK
// (Timer H, the linger), or they wait for a cancelled branch to end.
func (e *Engine) Lingering() int64 { return e.lingering.Load() }

// Completed returns the number of transactions over UDP answered within
// server.linger that sipgo no longer keeps: completed absorbs their
// retransmissions.
func (e *Engine) Completed() int { return e.completed.len(time.Now()) }

// QueueDelay returns the standing delay of the last interval overload
// watched: how long messages waited, at least, to be worked on.
func (e *Engine) QueueDelay() time.Duration {
	e.overload.settle(time.Now())
	return e.overload.delay()
}

// Overloaded reports whether new calls are refused for a standing queue.
func (e *Engine) Overloaded() bool {
	e.overload.settle(time.Now())
	return e.overload.shedding.Load()
}

// OverloadRefused returns how many new calls were refused for a standing
// queue since the start.
func (e *Engine) OverloadRefused() int64 { return e.overload.total.Load() }

// Draining reports whether a graceful stop has begun.
func (e *Engine) Draining() bool { return e.draining.Load() }

// holdCurrent returns the current pipeline, held (the caller releases
// it), or nil before the first. A reload may retire the pipeline between
// the load and the hold: then the new one is taken.
func (e *Engine) holdCurrent() *pipeline.Pipeline {
	p := e.current.Load()
	for p != nil && !p.Hold() {
		p = e.current.Load()
	}
	return p
}

// Pipeline returns the current pipeline; after Shutdown, the one it
// stopped.
func (e *Engine) Pipeline() *pipeline.Pipeline {
	if p := e.current.Load(); p != nil {
		return p
	}
	return e.stopped.Load()
}

// Start runs the background work: the binding sweeper, the memory given
// back after a flood, the close of idle connections the proxy dialed, and
// the keepalive pings.
func (e *Engine) Start() {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case now := <-t.C:
				e.release.tick(now, e.held())
				e.guard.SweepOutbound(now)
				e.calls.sweep(now)
				e.refused.sweep(now)
				if e.svc.Location != nil {
					if n := e.svc.Location.Sweep(now); n > 0 {
						e.log.Debug("bindings expired", "count", n)
					}
				}
				if n := e.dialogs.Sweep(now); n > 0 {
					e.log.Debug("dialogs expired", "count", n)
				}
			}
		}
	}()
	if e.svc.Keepalive != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.runKeepalive()
		}()
	}
}

// Shutdown drains: new dialog-creating requests get 503 with Retry-After
// while the transactions in flight finish, until ctx ends. Then it closes
// the sockets and the transaction layer, takes the pipeline out of service
// and cleans it up once the messages still in it are through (retire).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.draining.Store(true)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var err error
wait:
	for e.active.Load() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("%d transactions still in flight at shutdown", e.active.Load())
			break wait
		case <-t.C:
		}
	}
	close(e.stop)
	e.closeSockets()
	e.txl.Close()
	_ = e.tp.Close()
	e.captures.close()
	e.wg.Wait()
	e.timers.wait()
	if p := e.current.Swap(nil); p != nil {
		e.stopped.Store(p)
		e.retire(p)
		if cerr := p.Cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// retireWait bounds how long Shutdown waits for the messages still in
// the last pipeline once the transaction layer has ended their
// transactions.
const retireWait = 5 * time.Second

// retire waits, up to retireWait, until no message is served by p, which
// is no longer current: its stages are cleaned up only then, never under
// a request or response still running through them.
func (e *Engine) retire(p *pipeline.Pipeline) {
	done := make(chan struct{})
	go func() {
		p.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(retireWait):
		e.log.Warn("cleaning up the pipeline while messages still run through it", "waited", retireWait.String())
	}
}

func (e *Engine) closeSockets() {
	for _, c := range e.closers {
		_ = c()
	}
	e.closers = nil
}

// socketFor returns the listening socket to send from over transport, the
// one matching the address family of dst when there are several.
func (e *Engine) socketFor(transport string, dst netip.Addr) (boundSocket, bool) {
	var found boundSocket
	ok := false
	for _, s := range e.sockets {
		if !strings.EqualFold(s.Transport, transport) {
			continue
		}
		a := s.Addr.Addr()
		if dst.IsValid() && a.Is4() != dst.Unmap().Is4() && !a.IsUnspecified() {
			continue
		}
		if !ok || (dst.IsValid() && a == dst.Unmap()) {
			found, ok = s, true
		}
	}
	return found, ok
}
