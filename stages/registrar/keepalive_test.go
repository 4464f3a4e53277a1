package registrar

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestBehindNAT checks which bindings are pinged: those registered over
// UDP that pipeline.DetectNAT finds behind NAT (straight from the phone,
// the Via or a private Contact naming another address than the source).
func TestBehindNAT(t *testing.T) {
	const src = "203.0.113.5:40000"
	tests := []struct {
		name, contact, via, transport string
		path                          bool
		src                           string
		want                          bool
	}{
		{"private Contact and Via", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "UDP", false, src, true},
		{"the Contact is the source", "sip:a@203.0.113.5:40000", "203.0.113.5:40000", "UDP", false, src, false},
		{"default port", "sip:a@203.0.113.5", "203.0.113.5", "UDP", false, "203.0.113.5:5060", false},
		{"another port (a NAT that keeps the address)", "sip:a@203.0.113.5:5060", "203.0.113.5:5060", "UDP", false, src, true},
		{"the Via alone differs", "sip:a@203.0.113.5:40000", "10.0.0.5:5060", "UDP", false, src, true},
		{"a host name is not compared", "sip:a@phone.example.com", "203.0.113.5:40000", "UDP", false, src, false},
		{"TCP", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "TCP", false, src, false},
		{"relayed: a Path", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "UDP", true, src, false},
		{"IPv6", "sip:a@[2001:db8::5]:5060", "[2001:db8::5]:5060", "UDP", false, "[2001:db8::5]:5060", false},
	}
	for i, tc := range tests {
		raw := "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/" + tc.transport + " " + tc.via + ";branch=z9hG4bK1\r\n" +
			"From: <sip:a@example.org>;tag=1\r\nTo: <sip:a@example.org>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <" + tc.contact + ">\r\n"
		if tc.path {
			raw += "Path: <sip:edge.example.net;lr>\r\n"
		}
		req := stagetest.Request(t, raw+"Content-Length: 0\r\n\r\n")
		ap := netip.MustParseAddrPort(tc.src)
		ctx := pipeline.NewContext(nil, req, pipeline.Source{IP: ap.Addr(), Port: int(ap.Port())}, tc.transport)
		b := location.Binding{Contact: tc.contact, NAT: pipeline.DetectNAT(req, ctx.Source, tc.transport).Behind}
		if got := behindNAT(ctx, b); got != tc.want {
			t.Errorf("test %d (%s): behindNAT %v, want %v", i, tc.name, got, tc.want)
		}
	}
}

func TestLocalSocket(t *testing.T) {
	req := stagetest.Request(t, "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n")
	if got := localSocket(req); got.IsValid() {
		t.Errorf("no Laddr: %v", got)
	}
	req.Laddr = sip.Addr{IP: netip.MustParseAddr("::ffff:127.0.0.1").AsSlice(), Port: 5060}
	if got := localSocket(req); got.String() != "127.0.0.1:5060" {
		t.Errorf("Laddr %v: %v", req.Laddr, got)
	}
}

// TestHolder checks that a binding from behind NAT over UDP names the node
// and the socket that hold it, and that no other binding does.
func TestHolder(t *testing.T) {
	const nated = "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:bob@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: <sip:bob@192.168.1.20:5060>\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name, keys, transport, node string
		laddr                       bool
		wantNode, wantLocal         string
	}{
		{"UDP behind NAT", "", "UDP", "node-a", true, "node-a", "192.0.2.1:5060"},
		{"no socket known", "", "UDP", "node-a", false, "node-a", ""},
		{"no node ID", "", "UDP", "", true, "", "192.0.2.1:5060"},
		{"TCP", "", "TCP", "node-a", true, "", ""},
		{"nat = false", "nat = false", "UDP", "node-a", true, "", ""},
	}
	for i, tc := range tests {
		svc := &pipeline.Services{Location: location.NewMemory(), NodeID: tc.node}
		h := stagetest.Stage(t, "registrar", tc.keys, stagetest.WithServices(svc), stagetest.WithTransport(tc.transport), stagetest.WithSource("203.0.113.2:40000"))
		req := stagetest.Request(t, strings.ReplaceAll(nated, "UDP", tc.transport))
		if tc.laddr {
			req.Laddr = sip.Addr{IP: netip.MustParseAddr("192.0.2.1").AsSlice(), Port: 5060}
		}
		if res := h.Request(req); res.Code() != 200 {
			t.Fatalf("test %d (%s): %d %s", i, tc.name, res.Code(), res.Reason())
		}
		bs, _, err := svc.Location.Lookup("bob", time.Now())
		if err != nil || len(bs) != 1 {
			t.Fatalf("test %d (%s): %v %v", i, tc.name, bs, err)
		}
		if bs[0].Node != tc.wantNode || bs[0].Local != tc.wantLocal {
			t.Errorf("test %d (%s): Node %q Local %q, want %q %q", i, tc.name, bs[0].Node, bs[0].Local, tc.wantNode, tc.wantLocal)
		}
		svc.Location.Close()
	}
}

// TestRestoreFlow checks which stored bindings the registrar has pinged
// after a restart, and with what: its keepalive settings as they are now.
func TestRestoreFlow(t *testing.T) {
	redis, err := location.NewRedis("redis://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()
	memory := location.NewMemory()
	expires := time.Now().Add(time.Hour)
	nated := location.Binding{
		AOR: "bob", Contact: "sip:bob@192.168.1.20:5060", Params: "+sip.instance=\"<urn:uuid:1>\";reg-id=2", Instance: "<urn:uuid:1>",
		CallID: "reg-1", CSeq: 7, Expires: expires, Received: "203.0.113.2:40000", Transport: "UDP", NAT: true,
		Node: "node-a", Local: "192.0.2.1:5060",
	}
	with := func(change func(b *location.Binding)) location.Binding {
		b := nated
		change(&b)
		return b
	}
	tests := []struct {
		name  string
		store location.Store
		node  string
		b     location.Binding
		want  bool
	}{
		{"one node", memory, "node-a", nated, true},
		{"one node, another node's", memory, "node-b", nated, true},
		{"one node, written before nodes were named", memory, "node-a", with(func(b *location.Binding) { b.Node, b.Local = "", "" }), true},
		{"not behind NAT", memory, "node-a", with(func(b *location.Binding) { b.NAT = false }), false},
		{"TCP", memory, "node-a", with(func(b *location.Binding) { b.Transport = "TCP" }), false},
		{"no received address", memory, "node-a", with(func(b *location.Binding) { b.Received = "" }), false},
		{"shared, this node's", redis, "node-a", nated, true},
		{"shared, another node's", redis, "node-b", nated, false},
		{"shared, written before nodes were named", redis, "node-a", with(func(b *location.Binding) { b.Node = "" }), false},
		{"shared, this node has no ID", redis, "", with(func(b *location.Binding) { b.Node = "" }), false},
	}
	for i, tc := range tests {
		r := New()
		r.Keepalive, r.KeepaliveTimeout = config.Duration(3*time.Second), config.Duration(9*time.Second)
		r.store, r.node = tc.store, tc.node
		f, ok := r.restoreFlow(tc.b)
		if ok != tc.want {
			t.Errorf("test %d (%s): restored %v, want %v", i, tc.name, ok, tc.want)
			continue
		}
		if !ok {
			continue
		}
		want := keepalive.Flow{
			AOR: "bob", Contact: tc.b.Contact, Instance: "<urn:uuid:1>", RegID: "2", CallID: "reg-1", CSeq: 7,
			Received: netip.MustParseAddrPort("203.0.113.2:40000"), Expires: expires, Interval: 3 * time.Second, Timeout: 9 * time.Second,
		}
		if tc.b.Local != "" {
			want.Local = netip.MustParseAddrPort(tc.b.Local)
		}
		f.Log = nil
		if f != want {
			t.Errorf("test %d (%s): flow\n%+v\nwant\n%+v", i, tc.name, f, want)
		}
	}
}

// TestRestoreOffered checks that a registrar with keepalives offers the
// pinger its restorer, which brings a stored binding's pings back, and
// takes it back on Cleanup; one without keepalives, or built only to be
// checked, offers none. A probe offered before the registrar is built
// shows when the pinger restored with no registrar's restorer.
func TestRestoreOffered(t *testing.T) {
	tests := []struct {
		name     string
		keys     string
		checking bool
		cleanup  bool
		want     bool
	}{
		{"keepalive on", `keepalive = "1s"`, false, false, true},
		{"keepalive off", `keepalive = "0s"`, false, false, false},
		{"validate", `keepalive = "1s"`, true, false, false},
		{"cleaned up", `keepalive = "1s"`, false, true, false},
	}
	for i, tc := range tests {
		store := location.NewMemory()
		b := location.Binding{Contact: "sip:bob@192.168.1.20:5060", CallID: "reg-1", CSeq: 1, Expires: time.Now().Add(time.Hour),
			Received: "203.0.113.2:40000", Transport: "UDP", NAT: true}
		if _, err := store.Update("bob", time.Now(), func([]location.Binding) ([]location.Binding, error) { return []location.Binding{b}, nil }); err != nil {
			t.Fatal(err)
		}
		pings := make(chan keepalive.Ping, 10)
		pinger := keepalive.New(func() location.Store { return store }, func(pg keepalive.Ping) error { pings <- pg; return nil },
			func(string) {}, slog.New(slog.DiscardHandler))
		var probed atomic.Bool
		pinger.Restore(func(location.Binding) (keepalive.Flow, bool) { probed.Store(true); return keepalive.Flow{}, false })
		svc := &pipeline.Services{Location: store, Keepalive: pinger, Checking: tc.checking}
		h := stagetest.Stage(t, "registrar", tc.keys, stagetest.WithServices(svc))
		if tc.cleanup {
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { pinger.Run(stop); close(done) }()
		var pinged []keepalive.Status
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if pinged, _ = pinger.Flows(); len(pinged) > 0 || probed.Load() {
				break
			}
		}
		close(stop)
		<-done
		if got := len(pinged) == 1; got != tc.want {
			t.Errorf("test %d (%s): pinged %+v, want a flow %v", i, tc.name, pinged, tc.want)
		}
		if got := probed.Load(); got == tc.want {
			t.Errorf("test %d (%s): the probe was asked %v, want %v", i, tc.name, got, !tc.want)
		}
		if tc.want {
			if pg := <-pings; pg.Contact != b.Contact || pg.Received.String() != b.Received || pg.Interval != time.Second {
				t.Errorf("test %d (%s): ping %+v", i, tc.name, pg)
			}
		}
		store.Close()
	}
}
