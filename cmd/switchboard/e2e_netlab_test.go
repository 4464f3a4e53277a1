package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// netLab is a set of network namespaces a test builds, joined by veth
// pairs: hosts with addresses of their own, routers that masquerade. No
// namespace has a route out of the machine, so the private and documentation
// addresses the tests use (192.168.x, 100.64.x, 203.0.113.x) stay inside.
type netLab struct {
	t      *testing.T
	prefix string   // makes the names of this lab's namespaces unique
	hosts  []string // the namespaces made, deleted when the test ends
	links  int
}

// labCount tells the labs of one test process apart; the pid tells
// processes apart.
var labCount atomic.Int32

// newNetLab starts an empty lab. It needs root and ip (iproute2); nft
// (nftables) for routers.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; `make test` runs as root in CI")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: `make test` installs it (Debian packages iproute2, nftables)", tool)
		}
	}
	l := &netLab{t: t, prefix: fmt.Sprintf("sb%d-%d-", os.Getpid()%100000, labCount.Add(1))}
	t.Cleanup(l.close)
	return l
}

// ns is the namespace name of host.
func (l *netLab) ns(host string) string { return l.prefix + host }

// run runs ip, nft or sysctl (args[0]) in the root namespace, failing the
// test on an error.
func (l *netLab) run(args ...string) {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs args inside host's namespace.
func (l *netLab) in(host string, args ...string) {
	l.t.Helper()
	l.run(append([]string{"ip", "netns", "exec", l.ns(host)}, args...)...)
}

// host makes a namespace with loopback up.
func (l *netLab) host(name string) {
	l.t.Helper()
	l.run("ip", "netns", "add", l.ns(name))
	l.hosts = append(l.hosts, l.ns(name))
	l.in(name, "ip", "link", "set", "lo", "up")
}

// link joins hosts a and b with a veth pair, giving a the address aCIDR and
// b the address bCIDR (such as "192.168.1.1/24"). It returns the interface
// names, a's then b's.
func (l *netLab) link(a, aCIDR, b, bCIDR string) (string, string) {
	l.t.Helper()
	l.links++
	ia, ib := fmt.Sprintf("v%da", l.links), fmt.Sprintf("v%db", l.links)
	// Both ends are made inside their namespaces, so parallel labs never
	// meet on a name in the root namespace.
	l.run("ip", "link", "add", ia, "netns", l.ns(a), "type", "veth", "peer", "name", ib, "netns", l.ns(b))
	l.in(a, "ip", "addr", "add", aCIDR, "dev", ia)
	l.in(a, "ip", "link", "set", ia, "up")
	l.in(b, "ip", "addr", "add", bCIDR, "dev", ib)
	l.in(b, "ip", "link", "set", ib, "up")
	return ia, ib
}

// route sets host's default route via gateway.
func (l *netLab) route(host, gateway string) {
	l.t.Helper()
	l.in(host, "ip", "route", "add", "default", "via", gateway)
}

// masquerade makes host a NAT router: it forwards, and rewrites the source
// of what leaves through out to out's address, as a home router does.
func (l *netLab) masquerade(host, out string) {
	l.t.Helper()
	l.in(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.in(host, "nft", "add table ip nat")
	l.in(host, "nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }")
	l.in(host, "nft", "add rule ip nat post oifname "+out+" masquerade")
}

// udpTimeouts sets how long host's conntrack keeps a UDP mapping after its
// last packet: for a one-way flow and for a flow seen both ways (the kernel
// switches to the second after 2 s of two-way traffic).
func (l *netLab) udpTimeouts(host string, seconds int) {
	l.t.Helper()
	l.in(host, "sysctl", "-qw",
		fmt.Sprintf("net.netfilter.nf_conntrack_udp_timeout=%d", seconds),
		fmt.Sprintf("net.netfilter.nf_conntrack_udp_timeout_stream=%d", seconds))
}

// under is the command that runs a program in host's namespace, for
// startProxyUnder and runSippUnder.
func (l *netLab) under(host string) []string {
	return []string{"ip", "netns", "exec", l.ns(host)}
}

// close deletes the lab's namespaces, and with them their interfaces and
// the routers' state.
func (l *netLab) close() {
	for _, ns := range l.hosts {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	}
}

// within runs f on a thread moved into host's namespace: the sockets f
// opens belong to that namespace for their whole life, whichever thread
// uses them later.
func (l *netLab) within(host string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		// The thread stays locked, and so is dropped when this goroutine
		// ends, unless it got back to its own namespace.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/var/run/netns/" + l.ns(host))
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", l.ns(host), err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- ferr
	}()
	return <-done
}

// listenUDP opens a UDP socket at addr in host's namespace.
func (l *netLab) listenUDP(host, addr string) *net.UDPConn {
	l.t.Helper()
	var conn *net.UDPConn
	err := l.within(host, func() error {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		conn, err = net.ListenUDP("udp", a)
		return err
	})
	if err != nil {
		l.t.Fatalf("listen udp %s in %s: %v", addr, host, err)
	}
	l.t.Cleanup(func() { conn.Close() })
	return conn
}

// dialTCP opens a TCP connection from host's namespace, from local (an
// ip:port, or "" for any) to remote.
func (l *netLab) dialTCP(host, local, remote string) (net.Conn, error) {
	var conn net.Conn
	err := l.within(host, func() error {
		d := net.Dialer{}
		if local != "" {
			a, err := net.ResolveTCPAddr("tcp", local)
			if err != nil {
				return err
			}
			d.LocalAddr = a
		}
		var err error
		conn, err = d.Dial("tcp", remote)
		return err
	})
	return conn, err
}
