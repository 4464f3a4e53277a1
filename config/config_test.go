package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	f, err := Parse("c.toml", []byte(`
[server]
listen = ["udp://127.0.0.1:5070", "tcp://[::1]:5070"]
domains = ["example.org"]
aor = "user@domain"
drain_timeout = "5s"
linger = "32s"
memory_limit = "1GiB"
[log]
level = "debug"
[[stage]]
use = "registrar"
when = 'request.method == "REGISTER"'
max_contacts = 3
[[stage]]
use = "forward"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stages) != 2 || f.Stages[0].Use != "registrar" || f.Stages[0].When == "" || f.Stages[0].Keys["max_contacts"] == nil {
		t.Errorf("stages: %+v", f.Stages)
	}
	if _, ok := f.Stages[0].Keys["use"]; ok {
		t.Errorf("use left in the stage's keys")
	}
	if f.Server.DrainTimeout.D() != 5*time.Second || f.Server.Linger.D() != 32*time.Second || f.Server.AOR != "user@domain" || f.Log.Format != "text" {
		t.Errorf("server: %+v log: %+v", f.Server, f.Log)
	}
	if f.Server.MemoryLimit != 1<<30 {
		t.Errorf("memory_limit: %d, want 1GiB", f.Server.MemoryLimit)
	}
	if f.Stages[1].Index != 2 || f.Stages[1].Label() != "stage 2 (forward)" {
		t.Errorf("label: %q", f.Stages[1].Label())
	}
}

// TestDefaults checks what a file that sets nothing gets.
func TestDefaults(t *testing.T) {
	f, err := Parse("c.toml", []byte("[[stage]]\nuse = 'forward'\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Server
	if s.Linger.D() != DefaultLinger || s.UDPReceiveBuffer != DefaultUDPReceiveBuffer || s.MaxMessageSize != MaxMessageSize || s.MaxTransactions != DefaultMaxTransactions || s.MemoryLimit != 0 ||
		s.MaxInvitesPerSource != DefaultMaxInvitesPerSource || s.MaxInvitesPerCallee != DefaultMaxInvitesPerCallee ||
		s.HeaderTimeout.D() != DefaultHeaderTimeout || s.IdleTimeout.D() != DefaultIdleTimeout || s.MaxConnections != 0 || s.MaxConnectionsPerSource != 0 ||
		s.OverloadDelay.D() != DefaultOverloadDelay {
		t.Errorf("defaults: %+v", s)
	}
	off, err := Parse("c.toml", []byte("[server]\noverload_delay = '0s'\n[[stage]]\nuse = 'forward'\n"))
	if err != nil || off.Server.OverloadDelay != 0 {
		t.Errorf("overload_delay = '0s': %v, %v; want it off", off.Server.OverloadDelay, err)
	}
	if !slices.Equal(s.EmergencyNumbers, []string{"112", "911"}) {
		t.Errorf("emergency_numbers: %q, want 112 and 911", s.EmergencyNumbers)
	}
	for _, tc := range []struct {
		toml string
		want []string
	}{
		{"emergency_numbers = []", []string{}},
		{"emergency_numbers = ['999']", []string{"999"}},
		{"emergency_numbers = ['999', '112', '000']", []string{"999", "112", "000"}},
	} {
		g, err := Parse("c.toml", []byte("[server]\n"+tc.toml+"\n[[stage]]\nuse = 'forward'\n"))
		if err != nil || !slices.Equal(g.Server.EmergencyNumbers, tc.want) || g.Server.EmergencyNumbers == nil {
			t.Errorf("%s: %q, %v; want %q", tc.toml, g.Server.EmergencyNumbers, err, tc.want)
		}
	}
	if w := f.WebSocket; w.PingInterval.D() != DefaultPingInterval || len(w.Origins) != 0 {
		t.Errorf("websocket defaults: %+v", w)
	}
}

// TestHTTPConsole checks that the console is on unless console = false,
// and that two parses of one [http] are Equal though each makes its own
// console value.
func TestHTTPConsole(t *testing.T) {
	parse := func(http string) HTTP {
		t.Helper()
		f, err := Parse("c.toml", []byte(http+"\n[[stage]]\nuse = 'forward'\n"))
		if err != nil {
			t.Fatal(err)
		}
		return f.HTTP
	}
	tests := []struct {
		name, http string
		on         bool
	}{
		{"no [http]", "", true},
		{"console unset", "[http]\nlisten = '127.0.0.1:8080'", true},
		{"console = true", "[http]\nconsole = true", true},
		{"console = false", "[http]\nconsole = false", false},
	}
	for _, tc := range tests {
		h := parse(tc.http)
		if h.ConsoleOn() != tc.on {
			t.Errorf("%s: console on %v, want %v", tc.name, h.ConsoleOn(), tc.on)
		}
		if !h.Equal(parse(tc.http)) {
			t.Errorf("%s: two parses not Equal", tc.name)
		}
	}
	if parse("[http]\nconsole = true").Equal(parse("[http]\nconsole = false")) {
		t.Error("console on and off Equal")
	}
	if !parse("").Equal(parse("[http]\nconsole = true")) {
		t.Error("console unset and console = true not Equal: both are on")
	}
	if parse("[http]\nlisten = '127.0.0.1:8080'").Equal(parse("[http]\nlisten = '127.0.0.1:8081'")) {
		t.Error("two listen addresses Equal")
	}
}

// TestWebSocketOrigins checks that origins are kept as a browser sends
// them: scheme and host in lower case, no trailing slash.
func TestWebSocketOrigins(t *testing.T) {
	f, err := Parse("c.toml", []byte("[websocket]\norigins = ['HTTPS://Phone.Example.com/', 'http://127.0.0.1:8000']\nping_interval = '5s'\n[[stage]]\nuse = 'forward'\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://phone.example.com", "http://127.0.0.1:8000"}
	if strings.Join(f.WebSocket.Origins, " ") != strings.Join(want, " ") || f.WebSocket.PingInterval.D() != 5*time.Second {
		t.Errorf("websocket: %+v, want origins %q and a ping each 5s", f.WebSocket, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must appear in the error text
	}{
		{"empty file", "", []string{"c.toml: the file is empty"}},
		{"only spaces", "  \n\n", []string{"the file is empty"}},
		{"toml syntax", "[server\nlisten = 1", []string{"c.toml:1:8: toml: expected character ]"}},
		{"half written", "[server]\nlisten = [\"udp://127.0.0.1:5060\"\n", []string{"c.toml:2:33: toml: "}},
		{"unknown section", "[serveur]\n[[stage]]\nuse='forward'", []string{`c.toml:1:2: unknown section or key "serveur", did you mean "server"?`}},
		{"unknown server key", "[server]\nlisten_on = []\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: listen_on: unknown key, did you mean "listen"? (known: listen, domains`}},
		{"unknown log key", "[log]\nlevl = 'x'\n[[stage]]\nuse='forward'", []string{`log: levl: unknown key`}},
		{"console misspelt", "[http]\nconsle = false\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: http: consle: unknown key, did you mean "console"?`}},
		{"console not a bool", "[http]\nconsole = 'no'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: http: console: expected type 'bool'`}},
		{"bad listen", "[server]\nlisten = ['sctp://1.2.3.4:5060']\n[[stage]]\nuse='forward'", []string{`server: listen[0]: "sctp://1.2.3.4:5060": transport "sctp" is not`}},
		{"bad listen host", "[server]\nlisten = ['udp://example.org:5060']\n[[stage]]\nuse='forward'", []string{`is not an IP address`}},
		{"bad aor", "[server]\naor = 'domain'\n[[stage]]\nuse='forward'", []string{`server: aor: "domain"`}},
		{"bad duration", "[server]\ndrain_timeout = 'soon'\n[[stage]]\nuse='forward'", []string{`server: drain_timeout:`, `not a duration`}},
		{"fraction for a whole number", "[server]\nmax_transactions = 2.5\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_transactions: 2.5 is not a whole number`}},
		{"max_message_size too small", "[server]\nmax_message_size = 100\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_message_size: 100 is not between 1024 and 65535`}},
		{"max_message_size too large", "[server]\nmax_message_size = 100000\n[[stage]]\nuse='forward'", []string{`server: max_message_size: 100000 is not between 1024 and 65535`}},
		{"udp_receive_buffer too small", "[server]\nudp_receive_buffer = 1000\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: udp_receive_buffer: 1000 is not between 65536 and 268435456 bytes (-1: the kernel's default)`}},
		{"gc_headroom too small", "[server]\ngc_headroom = '1MiB'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: gc_headroom: 1MiB is not between 4MiB and 64GiB (4MiB: Go's default collector)`}},
		{"memory_limit too small", "[server]\nmemory_limit = '16MiB'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: memory_limit: 16MiB is less than 64MiB (0: no limit)`}},
		{"memory_limit without a number", "[server]\nmemory_limit = 'lots'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: memory_limit:`, `"lots" is not a size such as "512MiB" or "1GiB"`}},
		{"memory_limit fraction", "[server]\nmemory_limit = 2.5\n[[stage]]\nuse='forward'", []string{`server: memory_limit:`, `not a whole number of bytes`}},
		{"memory_limit negative", "[server]\nmemory_limit = '-1GiB'\n[[stage]]\nuse='forward'", []string{`server: memory_limit:`, `"-1GiB" is negative`}},
		{"memory_limit a boolean", "[server]\nmemory_limit = true\n[[stage]]\nuse='forward'", []string{`server: memory_limit:`, `must be a size`}},
		{"max_invites_per_source negative", "[server]\nmax_invites_per_source = -2\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_invites_per_source: -2 is neither positive nor -1 (no limit)`}},
		{"max_invites_per_callee negative", "[server]\nmax_invites_per_callee = -5\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_invites_per_callee: -5 is neither positive nor -1 (no limit)`}},
		{"linger too short", "[server]\nlinger = '100ms'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: linger: 100ms is not between 1s and 32s`}},
		{"overload_delay too short", "[server]\noverload_delay = '1ms'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: overload_delay: 1ms is not between 10ms and 32s ("0s": never refuse for it)`}},
		{"emergency number not dialled", "[server]\nemergency_numbers = ['112', 'sos']\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: emergency_numbers: "sos" is not a number dialled (digits, * and #)`}},
		{"linger too long", "[server]\nlinger = '1m'\n[[stage]]\nuse='forward'", []string{`server: linger: 1m0s is not between 1s and 32s`}},
		{"max_connections negative", "[server]\nmax_connections = -1\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_connections: -1 is negative`}},
		{"max_connections_per_source negative", "[server]\nmax_connections_per_source = -5\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: max_connections_per_source: -5 is negative`}},
		{"header_timeout too short", "[server]\nheader_timeout = '10ms'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: header_timeout: 10ms is not between 1s and 5m`}},
		{"trusted_sources not a network", "[server]\ntrusted_sources = ['10.0.0.0/8', '10.0.0.300']\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: trusted_sources[1]: "10.0.0.300" is not a network such as "10.0.0.0/8" or an address`}},
		{"idle_timeout too long", "[server]\nidle_timeout = '48h'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: server: idle_timeout: 48h0m0s is not between 1s and 24h`}},
		{"wrong type", "[server]\ndomains = 'example.org'\n[[stage]]\nuse='forward'", []string{`server: domains:`}},
		{"origin with a path", "[websocket]\norigins = ['https://a.example/phone']\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: websocket: origins[0]: "https://a.example/phone" is not an origin`}},
		{"origin without a scheme", "[websocket]\norigins = ['a.example']\n[[stage]]\nuse='forward'", []string{`websocket: origins[0]: "a.example" is not an origin`}},
		{"ping_interval too short", "[websocket]\nping_interval = '100ms'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: websocket: ping_interval: 100ms is not between 1s and 1h`}},
		{"http tls without a certificate", "[http]\nlisten = '192.0.2.1:9443'\ntls = true\n[[stage]]\nuse='forward'", []string{`c.toml:3:1: http: tls: needs [tls] cert and key`}},
		{"unknown websocket key", "[websocket]\norigin = []\n[[stage]]\nuse='forward'", []string{`websocket: origin: unknown key`}},
		{"dns server by name", "[dns]\nservers = ['127.0.0.1:5353', 'dns.example']\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: dns: servers[1]: dns server "dns.example" is not an IP address`}},
		{"dns timeout", "[dns]\ntimeout = '1m'\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: dns: timeout: 1m0s is not between 100ms and 30s`}},
		{"dns cache_size", "[dns]\ncache_size = -1\n[[stage]]\nuse='forward'", []string{`c.toml:2:1: dns: cache_size: -1 is not positive`}},
		{"unknown dns key", "[dns]\nserver = '127.0.0.1'\n[[stage]]\nuse='forward'", []string{`dns: server: unknown key`}},
		{"bad log level", "[log]\nlevel = 'loud'\n[[stage]]\nuse='forward'", []string{`log: level: "loud"`}},
		{"no stages", "[server]\ndomains = ['a.org']", []string{"no [[stage]]"}},
		{"stage without use", "[[stage]]\nwhen = 'true'", []string{"c.toml:1:3: stage 1: use: missing"}},
		{"stage as table", "[stage]\nuse = 'forward'", []string{"stage: must be an array of tables"}},
		{"when not a string", "[[stage]]\nuse='forward'\nwhen = 3", []string{"stage 1 (forward): when: must be a string"}},
		{"two mistakes", "[server]\nfoo = 1\nbar = 2\n[[stage]]\nuse='forward'", []string{"server: bar: unknown key", "server: foo: unknown key"}},
		{"unknown key after a wrong type", "[server]\ndrain_timeout = 5\ndomain = 'a.org'\n[[stage]]\nuse='forward'", []string{"server: drain_timeout: must be a duration", `c.toml:3:1: server: domain: unknown key, did you mean "domains"?`}},
	}
	for i, tc := range tests {
		_, err := Parse("c.toml", []byte(tc.toml))
		if err == nil {
			t.Errorf("test %d (%s): no error", i, tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("test %d (%s): error %q does not contain %q", i, tc.name, err, w)
			}
		}
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"udp://0.0.0.0:5060", "udp://0.0.0.0:5060", false},
		{"tcp://[::1]:5070", "tcp://[::1]:5070", false},
		{"UDP://127.0.0.1:0", "udp://127.0.0.1:0", false},
		{"udp://127.0.0.1", "", true},
		{"udp://127.0.0.1:70000", "", true},
		{"tls://127.0.0.1:5061", "tls://127.0.0.1:5061", false},
		{"tls://0.0.0.0:5061?advertise=sip.example.org", "tls://0.0.0.0:5061", false},
		{"tls://0.0.0.0:5061?advertise=sip.example.org:5061", "tls://0.0.0.0:5061", false},
		{"tls://0.0.0.0:5061?advertise=", "", true},
		{"tls://0.0.0.0:5061?advertise=a:99999", "", true},
		{"tls://0.0.0.0:5061?via=x", "", true},
		{"tls://0.0.0.0:5061?advertise=a&advertise=b", "", true},
		{"127.0.0.1:5060", "", true},
		{"udp://127.0.0.1:5060/x", "", true},
		{"ws://0.0.0.0:8080/sip", "ws://0.0.0.0:8080/sip", false},
		{"WS://[::1]:8080", "ws://[::1]:8080", false},
		{"ws://127.0.0.1:8080/", "ws://127.0.0.1:8080", false},
		{"ws://127.0.0.1:8080/sip?x=1", "", true},
		{"ws://127.0.0.1:8080/sip#x", "", true},
		{"ws://0.0.0.0:8080/sip?advertise=ws.example.org", "ws://0.0.0.0:8080/sip", false},
		{"tcp://127.0.0.1:5060/sip", "", true},
		{"wss://0.0.0.0:8443/sip", "wss://0.0.0.0:8443/sip", false},
		{"WSS://[::1]:8443/", "wss://[::1]:8443", false},
		{"wss://0.0.0.0:8443/sip?advertise=sip.example.org", "wss://0.0.0.0:8443/sip", false},
		{"wss://0.0.0.0:8443/sip?x=1", "", true},
		{"tls://127.0.0.1:5061/sip", "", true},
	}
	for i, tc := range tests {
		l, err := ParseListen(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("test %d: %q: err = %v", i, tc.in, err)
			continue
		}
		if err == nil && l.String() != tc.want {
			t.Errorf("test %d: %q = %q, want %q", i, tc.in, l.String(), tc.want)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	type stage struct {
		Reason  string            `toml:"reason"`
		Timeout Duration          `toml:"timeout"`
		Headers map[string]string `toml:"headers"`
	}
	tests := []struct {
		in   map[string]any
		want []string
	}{
		{map[string]any{"reason": "OK", "timeout": "2s", "headers": map[string]any{"X": "y"}}, nil},
		{map[string]any{"reasn": "OK"}, []string{"reasn: unknown key, did you mean \"reason\"? (known: reason, timeout, headers)"}},
		{map[string]any{"timeout": 3}, []string{"timeout:", "must be a duration"}},
		{map[string]any{"reason": []any{1}}, []string{"reason:"}},
	}
	for i, tc := range tests {
		var s stage
		errs := DecodeStrict(tc.in, &s)
		if len(tc.want) == 0 && len(errs) > 0 {
			t.Errorf("test %d: unexpected %v", i, errs)
		}
		var text []string
		for _, e := range errs {
			text = append(text, e.Error())
		}
		joined := strings.Join(text, "\n")
		for _, w := range tc.want {
			if !strings.Contains(joined, w) {
				t.Errorf("test %d: %q does not contain %q", i, joined, w)
			}
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"512 MiB", 512 << 20, false},
		{"100MB", 100e6, false},
		{"64KiB", 64 << 10, false},
		{"4096", 4096, false},
		{"4096B", 4096, false},
		{"1.5GiB", 0, true},
		{"-1GiB", 0, true},
		{"GiB", 0, true},
		{"1 gigabyte", 0, true},
		{"99999999999TiB", 0, true},
	}
	for i, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("test %d: ParseSize(%q) = %d, %v; want %d, error %v", i, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	for _, s := range []Size{1 << 30, 512 << 20, 100e6, 4096, 1} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("%d: String %q reads back as %d, %v", int64(s), s.String(), back, err)
		}
	}
}

// TestMemoryLimitNumbers checks that a whole number of bytes, written as
// TOML's integer or float, is a size.
func TestMemoryLimitNumbers(t *testing.T) {
	for _, v := range []string{"1000000000", "1e9", "'1000MB'"} {
		f, err := Parse("c.toml", []byte("[server]\nmemory_limit = "+v+"\n[[stage]]\nuse = 'forward'\n"))
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if f.Server.MemoryLimit != 1e9 {
			t.Errorf("%s: %d, want 1e9", v, f.Server.MemoryLimit)
		}
	}
}
