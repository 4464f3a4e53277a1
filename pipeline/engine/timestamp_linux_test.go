package engine

import (
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestStampedArrival has datagrams wait in a stamped socket before their
// reads: the wait reported for the one sampled is at least as long, and
// every datagram and its source come through as from a plain read.
func TestStampedArrival(t *testing.T) {
	conn := listenUDP(t, "127.0.0.1")
	if !stampArrivals(conn) {
		t.Skip("the kernel does not stamp datagrams here")
	}
	r := newReaderShare(conn, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var waits []time.Duration
	r.stamped, r.oob = conn, make([]byte, stampOOB)
	r.queued = func(d time.Duration, _ time.Time) { waits = append(waits, d) }
	sender := listenUDP(t, "127.0.0.1")
	for i := range stampEvery {
		if _, err := sender.WriteTo([]byte("OPTIONS "+strconv.Itoa(i)), conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	const held = 50 * time.Millisecond
	time.Sleep(held) // the datagrams wait in the socket: the wait to measure
	buf := make([]byte, 100)
	for i := range stampEvery {
		n, from, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := "OPTIONS " + strconv.Itoa(i); string(buf[:n]) != want || from.String() != sender.LocalAddr().String() {
			t.Errorf("read %q from %s, want %q from %s", buf[:n], from, want, sender.LocalAddr())
		}
	}
	// Every stampEvery-th read asks for the arrival time.
	if len(waits) != 1 || waits[0] < held || waits[0] > time.Minute {
		t.Errorf("waits reported %v, want one of at least %s", waits, held)
	}
}

// TestArrivedAt reads the receive time out of control messages, and
// nothing out of malformed ones.
func TestArrivedAt(t *testing.T) {
	conn := listenUDP(t, "127.0.0.1")
	if !stampArrivals(conn) {
		t.Skip("the kernel does not stamp datagrams here")
	}
	sender := listenUDP(t, "127.0.0.1")
	before := time.Now()
	if _, err := sender.WriteTo([]byte("x"), conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	oob := make([]byte, stampOOB)
	_, oobn, _, _, err := conn.ReadMsgUDPAddrPort(make([]byte, 10), oob)
	if err != nil {
		t.Fatal(err)
	}
	oob = oob[:oobn]
	// Another control message first (IP_TTL's int), as another socket
	// option would put there.
	other := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&other[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_TTL
	h.SetLen(unix.CmsgLen(4))
	tests := []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"as read", oob, true},
		{"after another", append(other, oob...), true},
		{"another alone", other, false},
		{"none", nil, false},
		{"cut short", oob[:len(oob)-4], false},
		{"a header alone", oob[:len(oob)/2], false},
	}
	for _, tc := range tests {
		at, ok := arrivedAt(tc.oob)
		if ok != tc.ok {
			t.Errorf("%s: found %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && (at.Before(before.Add(-time.Second)) || at.After(time.Now())) {
			t.Errorf("%s: arrived at %s, sent at %s", tc.name, at, before)
		}
	}
}

// TestListenStamps: a UDP socket the engine listens on asks the kernel for
// arrival times and reports its waits to the overload watch.
func TestListenStamps(t *testing.T) {
	c := newCore(t, productChain)
	shares := c.e.shares.Load()
	if shares == nil || len(*shares) == 0 {
		t.Fatal("no UDP socket")
	}
	for _, r := range *shares {
		if r.stamped == nil || len(r.oob) != stampOOB || r.queued == nil {
			t.Errorf("socket %s: stamped %v, room for %d bytes of control message, reporting %v; want all set", r.local, r.stamped != nil, len(r.oob), r.queued != nil)
		}
	}
	c.e.overload.mu.Lock()
	n := len(c.e.overload.sockets)
	c.e.overload.mu.Unlock()
	if n != len(*shares) {
		t.Errorf("the overload watch has %d sockets, want %d", n, len(*shares))
	}
}
