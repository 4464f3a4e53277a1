// Package config reads config.toml: strict TOML decoding with koanf, where an
// unknown key or section anywhere is an error, and errors that read as a
// path to the mistake (file, section or stage, key).
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
)

// File is a decoded config file.
type File struct {
	// Path is the file it was read from; Hash the SHA-256 of its bytes.
	Path string `toml:"-"`
	Hash string `toml:"-"`
	// Positions are where its keys are written, for errors found after
	// decoding (pipeline.Build).
	Positions Positions `toml:"-"`

	Server Server `toml:"server"`
	Log    Log    `toml:"log"`
	Store  Store  `toml:"store"`
	HTTP   HTTP   `toml:"http"`
	TLS    TLS    `toml:"tls"`
	// WebSocket is the [websocket] section.
	WebSocket WebSocket `toml:"websocket"`
	// Capture is the [capture] section: HEP export and pcap files.
	Capture Capture `toml:"capture"`
	Stages  []Stage `toml:"-"`

	// DNS is the [dns] section.
	DNS DNS `toml:"dns"`
	// Sets are the [[set]] tables: destination sets.
	Sets []Set `toml:"-"`
}

// DefaultLinger is server.linger's default: Kamailio's wt_timer.
const DefaultLinger = 5 * time.Second

// DefaultOverloadDelay is server.overload_delay's default: well under T1
// (500 ms), after which callers retransmit what waits.
const DefaultOverloadDelay = 200 * time.Millisecond

// DefaultEmergencyNumbers is server.emergency_numbers' default: the two
// that every mobile phone treats as emergency calls (3GPP TS 22.101).
var DefaultEmergencyNumbers = []string{"112", "911"}

// MinOverloadDelay and MaxOverloadDelay bound server.overload_delay.
const (
	MinOverloadDelay = 10 * time.Millisecond
	MaxOverloadDelay = 32 * time.Second
)

// MinLinger and MaxLinger bound server.linger: 64*T1 is RFC 3261's.
const (
	MinLinger = time.Second
	MaxLinger = 32 * time.Second
)

// DefaultMaxTransactions is server.max_transactions' default: room for the
// transactions of about 4000 calls a second in a 5 s linger.
const DefaultMaxTransactions = 50000

// The defaults of server.max_invites_per_source and max_invites_per_callee:
// a source may hold a twenty-fifth of the default max_transactions, a
// called user a few rooms of phones ringing.
const (
	DefaultMaxInvitesPerSource = 2000
	DefaultMaxInvitesPerCallee = 100
)

// MinMemoryLimit is the smallest server.memory_limit: below it the
// collector would run all the time.
const MinMemoryLimit Size = 64 << 20

// MinGCHeadroom, Go's smallest heap goal, is the least server.gc_headroom
// (and leaves Go's default collector, as no headroom does: in a 30-minute
// soak a headroom of 64 MiB took no less CPU and had the worse tail,
// docs/benchmarks.md). Past MaxGCHeadroom the collector might never run
// before memory runs out.
const (
	MinGCHeadroom Size = 4 << 20
	MaxGCHeadroom Size = 64 << 30
)

// DefaultDialogTimeout is server.dialog_timeout's default: Kamailio's
// dialog module keeps a dialog 12 hours.
const DefaultDialogTimeout = 12 * time.Hour

// DefaultUDPReceiveBuffer is server.udp_receive_buffer's default: 4 MiB,
// about 4000 requests of 1 kB.
const DefaultUDPReceiveBuffer = 4 << 20

// The bounds of [server] max_message_size. The largest, and the default, is
// the most sipgo's parser reads; the smallest leaves room for an INVITE with
// a plain SDP offer.
const (
	MinMessageSize = 1024
	MaxMessageSize = 65535
)

// Server is the [server] section.
type Server struct {
	// Listen lists the sockets, as URIs: "udp://0.0.0.0:5060", "tcp://[::1]:5070".
	Listen []string `toml:"listen"`
	// Domains are the SIP domains this proxy is authoritative for.
	Domains []string `toml:"domains"`
	// AOR says how an address-of-record is keyed: "user" (the default: the
	// user name alone, so alice@192.0.2.10 and alice@example.org are one
	// user) or "user@domain".
	AOR string `toml:"aor"`
	// Advertise is the host[:port] the proxy puts in Record-Route and Via,
	// when the listen address is not one the phones can reach (0.0.0.0, or
	// behind NAT). Empty: the listen address, or this host's first
	// non-loopback address when listening on all interfaces.
	Advertise string `toml:"advertise"`
	// DrainTimeout bounds a graceful stop: new dialog-creating requests get
	// 503 while transactions in flight finish, for at most this long.
	DrainTimeout Duration `toml:"drain_timeout"`
	// MaxTransactions bounds the server transactions held: in flight
	// (without a final response) and lingering after it; past it, new
	// requests get 503 with Retry-After.
	MaxTransactions int `toml:"max_transactions"`
	// MaxInvitesPerSource bounds the INVITE transactions in flight from one
	// source address (an IPv6 /64); past it, 503 with Retry-After. -1: no
	// limit.
	MaxInvitesPerSource int `toml:"max_invites_per_source"`
	// MaxInvitesPerCallee bounds the new INVITEs in flight, forwarded, to
	// one called user (the Request-URI's address-of-record); past it, 486.
	// -1: no limit.
	MaxInvitesPerCallee int `toml:"max_invites_per_callee"`
	// OverloadDelay is the standing queueing delay past which new calls
	// are refused: once the least wait of messages in each 100 ms for T1
	// was longer than this, new dialog-creating requests get 503 (without
	// Retry-After) until it is not. "0s": never.
	OverloadDelay Duration `toml:"overload_delay"`
	// EmergencyNumbers are the numbers dialled for emergency services: a
	// new call to one (the user part of a sip or sips Request-URI, or a
	// tel one) is never refused by the overload, as one to
	// urn:service:sos is not. Absent: DefaultEmergencyNumbers; [] for
	// none.
	EmergencyNumbers []string `toml:"emergency_numbers"`
	// Linger is how long a completed transaction stays to absorb
	// retransmissions (RFC 3261 Timers D, J, L and M, 32 s there; like
	// Kamailio's wt_timer). It changes on restart.
	Linger Duration `toml:"linger"`
	// UDPReceiveBuffer is the receive buffer asked for each UDP socket, in
	// bytes (SO_RCVBUF; the kernel caps it at net.core.rmem_max): room for
	// bursts while the proxy is busy. -1 leaves the kernel's default. It
	// changes on restart.
	UDPReceiveBuffer int `toml:"udp_receive_buffer"`
	// MaxMessageSize is the largest SIP message accepted, in bytes; a
	// larger request is answered 513 Message Too Large, unparsed.
	MaxMessageSize int `toml:"max_message_size"`
	// MemoryLimit, when set, is the memory the Go runtime may grow to
	// before the garbage collector runs (Go's GOMEMLIMIT, with GOGC off):
	// memory set aside for the proxy, like Kamailio's -m. Collections are
	// rarer and the latency they add with them. Zero sets no limit: the
	// collector runs by GCHeadroom (or the GOGC and GOMEMLIMIT environment
	// variables). It applies on reload.
	MemoryLimit Size `toml:"memory_limit"`
	// GCHeadroom, when no MemoryLimit is set, is about how much the heap
	// may grow past what the last collection found live before the next:
	// a small live heap is not marked several times a second. A headroom
	// smaller than the live heap leaves Go's default (the heap doubles).
	// The GOGC environment variable replaces it. It applies on reload.
	GCHeadroom Size `toml:"gc_headroom"`
	// DialogTimeout is how long the proxy keeps a dialog it record-routed
	// after the last request in it (like Kamailio's dialog default_timeout):
	// an in-dialog request after that is refused with 481.
	DialogTimeout Duration `toml:"dialog_timeout"`
	// MaxConnections bounds the TCP connections open at once, and
	// MaxConnectionsPerSource those from one address (an IPv6 /64); past
	// either a new connection is closed at once. Zero derives them from the
	// limit on open files (see guard.DefaultCaps). They apply on reload.
	MaxConnections          int `toml:"max_connections"`
	MaxConnectionsPerSource int `toml:"max_connections_per_source"`
	// HeaderTimeout closes a connection that takes longer to send a whole
	// message (from the accept for its first); IdleTimeout one that sent
	// none for that long and has no registration on it.
	HeaderTimeout Duration `toml:"header_timeout"`
	IdleTimeout   Duration `toml:"idle_timeout"`
	// TrustedSources are the networks (or addresses) of trunks and session
	// border controllers, whose UDP datagrams the socket's reader never
	// drops to share itself among the sources (like the address table of
	// Kamailio's permissions module: sources trusted, not checked).
	TrustedSources []string `toml:"trusted_sources"`
	// Trusted is TrustedSources parsed.
	Trusted []netip.Prefix `toml:"-"`
	// StateDir is the folder for every file the proxy writes (see
	// File.StateDir); a relative path is taken from the config's folder.
	StateDir string `toml:"state_dir"`
	// ControlSocket is the unix socket `switchboard ctl` talks to; a
	// relative path is taken from StateDir. Empty: switchboard.ctl in
	// $RUNTIME_DIRECTORY, else in StateDir (see ctl.SocketPath).
	ControlSocket string `toml:"control_socket"`
	// ServerHeader is the Server header of the responses the proxy makes
	// itself, and UserAgent the User-Agent header of the requests it
	// originates (pings); relayed messages keep their own. Empty sends
	// none. The default, DefaultAgent, has no version: scanners
	// fingerprint versions.
	ServerHeader string `toml:"server_header"`
	UserAgent    string `toml:"user_agent"`
}

// DefaultAgent is server.server_header's and server.user_agent's default.
const DefaultAgent = "Switchboard"

// The defaults of server.header_timeout and server.idle_timeout.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 5 * time.Minute
)

// Log is the [log] section.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
	// Output is where the log goes: stderr, file, syslog or journald.
	Output string `toml:"output"`
	// File is the log file when Output is file, relative to the state
	// folder (File.StateDir) unless absolute.
	File string `toml:"file"`
	// Socket is the unix datagram socket syslog or journald output writes
	// to; empty is /dev/log or journald's native socket.
	Socket string `toml:"socket"`
	// Trace logs, for each message, every stage it went through, whether
	// its rule matched, and what the stage did.
	Trace bool `toml:"trace"`
	// TraceMessages logs every SIP message in and out, whole.
	TraceMessages bool `toml:"trace_messages"`
	// TraceWhen, an expr rule, limits both traces to the messages it
	// matches (a Call-ID, a user...). Empty: every message.
	TraceWhen string `toml:"trace_when"`
}

// Stage is one [[stage]] entry: its type, its rule, and its own keys, which
// the stage decodes strictly itself.
type Stage struct {
	// Index is the entry's position, from 1.
	Index int
	Use   string
	When  string
	Keys  map[string]any
}

// Label names the entry in errors: `stage 3 (rewrite)`.
func (s Stage) Label() string {
	if s.Use == "" {
		return fmt.Sprintf("stage %d", s.Index)
	}
	return fmt.Sprintf("stage %d (%s)", s.Index, s.Use)
}

// Path returns the key path of one of the entry's keys, for
// Errors.AddAt: "stage[3].when"; key "" is the entry itself.
func (s Stage) Path(key string) string {
	p := "stage[" + strconv.Itoa(s.Index) + "]"
	if key == "" {
		return p
	}
	return p + "." + key
}

// Defaults fills what the file left out.
func (f *File) Defaults() {
	if len(f.Server.Listen) == 0 {
		f.Server.Listen = []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"}
	}
	if f.Server.AOR == "" {
		f.Server.AOR = "user"
	}
	if f.Server.MaxTransactions == 0 {
		f.Server.MaxTransactions = DefaultMaxTransactions
	}
	if f.Server.MaxInvitesPerSource == 0 {
		f.Server.MaxInvitesPerSource = DefaultMaxInvitesPerSource
	}
	if f.Server.MaxInvitesPerCallee == 0 {
		f.Server.MaxInvitesPerCallee = DefaultMaxInvitesPerCallee
	}
	if f.Server.DrainTimeout == 0 {
		f.Server.DrainTimeout = Duration(32 * time.Second)
	}
	if f.Server.MaxMessageSize == 0 {
		f.Server.MaxMessageSize = MaxMessageSize
	}
	if f.Server.UDPReceiveBuffer == 0 {
		f.Server.UDPReceiveBuffer = DefaultUDPReceiveBuffer
	}
	if f.Server.Linger == 0 {
		f.Server.Linger = Duration(DefaultLinger)
	}
	if f.Server.EmergencyNumbers == nil {
		f.Server.EmergencyNumbers = slices.Clone(DefaultEmergencyNumbers)
	}
	if f.Server.DialogTimeout == 0 {
		f.Server.DialogTimeout = Duration(DefaultDialogTimeout)
	}
	if f.Server.HeaderTimeout == 0 {
		f.Server.HeaderTimeout = Duration(DefaultHeaderTimeout)
	}
	if f.Server.IdleTimeout == 0 {
		f.Server.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if f.Log.Level == "" {
		f.Log.Level = "info"
	}
	if f.Log.Format == "" {
		f.Log.Format = "text"
	}
	f.Log.defaults()
	f.Store.Defaults()
	f.TLS.defaults()
	f.TLS.resolve(filepath.Dir(f.Path))
	f.Server.resolveStateDir(filepath.Dir(f.Path))
	f.WebSocket.Defaults()
	f.Capture.defaults(filepath.Dir(f.Path))
	f.DNS.Defaults()
}

// Load reads and decodes a config file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{File: path, List: []error{err}}
	}
	return Parse(path, data)
}

// Parse decodes config bytes; path names the file in errors. Every mistake
// found is returned together, as *Errors, with the file as far as it
// decoded (nil when the TOML itself does not parse): validate builds its
// stages too, to list every mistake in one pass. Such a file must not run.
func Parse(path string, data []byte) (*File, error) {
	errs := &Errors{File: path}
	sum := sha256.Sum256(data)
	// The agent names and overload_delay are set before decoding: only a
	// key in the file, even an empty one or "0s", replaces them.
	f := &File{Path: path, Hash: hex.EncodeToString(sum[:]), Server: Server{ServerHeader: DefaultAgent, UserAgent: DefaultAgent, OverloadDelay: Duration(DefaultOverloadDelay)}}
	if len(strings.TrimSpace(string(data))) == 0 {
		errs.Add(fmt.Errorf("the file is empty: a config needs at least one [[stage]]"))
		return nil, errs
	}
	positions, again := positionsOf(data)
	k := koanf.New("\x00")
	if err := k.Load(rawbytes.Provider(data), toml.Parser()); err != nil {
		var de *gotoml.DecodeError
		switch {
		case errors.As(err, &de):
			line, column := de.Position()
			errs.addPos(line, column, de)
		case again != nil:
			errs.addPos(again.Line, again.Column, err)
		default:
			errs.Add(err)
		}
		return nil, errs
	}
	f.Positions, errs.Positions = positions, positions
	raw := k.Raw()
	tables := f.tables()
	for _, key := range sortedKeys(raw) {
		val := raw[key]
		if t, ok := tables[key]; ok {
			decodeSection(errs, key, val, t)
			continue
		}
		switch key {
		case "stage":
			f.Stages = decodeStages(errs, val)
		case "set":
			f.Sets = decodeSets(errs, val)
		default:
			errs.AddAt(key, fmt.Errorf("unknown section or key %q%s (known: [%s], [[set]], [[stage]])", key, DidYouMean(key, sections), strings.Join(tableNames, "], [")))
		}
	}
	f.Defaults()
	f.validate(errs)
	if errs.Len() > 0 {
		return f, errs
	}
	return f, nil
}

// tableNames are the file's single tables, in the order errors list them;
// tables maps each to the field it decodes into.
var tableNames = []string{"server", "log", "store", "http", "tls", "websocket", "capture", "dns"}

func (f *File) tables() map[string]any {
	return map[string]any{
		"server": &f.Server, "log": &f.Log, "store": &f.Store, "http": &f.HTTP,
		"tls": &f.TLS, "websocket": &f.WebSocket, "capture": &f.Capture, "dns": &f.DNS,
	}
}

// sections are the names of the file's sections: its tables and its
// arrays of tables.
var sections = append(slices.Clone(tableNames), "set", "stage")

func (f *File) validate(errs *Errors) {
	for _, err := range CheckListens(f.Server.Listen) {
		errs.addIn("server", err)
	}
	if err := CheckHTTPListen(f.Server.Listen, f.HTTP.Listen); err != nil {
		errs.AddAt("http.listen", err)
	}
	switch f.Server.AOR {
	case "user", "user@domain":
	default:
		errs.AddAt("server.aor", fmt.Errorf("server: aor: %q is neither \"user\" nor \"user@domain\"", f.Server.AOR))
	}
	for key, v := range map[string]string{"server_header": f.Server.ServerHeader, "user_agent": f.Server.UserAgent} {
		if strings.ContainsAny(v, "\r\n") {
			errs.AddAt("server."+key, fmt.Errorf("server: %s: %q spans lines: a header value is one line", key, v))
		}
	}
	for i, d := range f.Server.Domains {
		if d == "" || strings.ContainsAny(d, " :;@") {
			errs.AddAt("server.domains["+strconv.Itoa(i)+"]", fmt.Errorf("server: domains[%d]: %q is not a host name", i, d))
		}
	}
	if f.Server.MaxTransactions < 0 {
		errs.AddAt("server.max_transactions", fmt.Errorf("server: max_transactions: %d is negative", f.Server.MaxTransactions))
	}
	if n := f.Server.MaxInvitesPerSource; n < -1 {
		errs.AddAt("server.max_invites_per_source", fmt.Errorf("server: max_invites_per_source: %d is neither positive nor -1 (no limit)", n))
	}
	if n := f.Server.MaxInvitesPerCallee; n < -1 {
		errs.AddAt("server.max_invites_per_callee", fmt.Errorf("server: max_invites_per_callee: %d is neither positive nor -1 (no limit)", n))
	}
	if n := f.Server.MaxMessageSize; n < MinMessageSize || n > MaxMessageSize {
		errs.AddAt("server.max_message_size", fmt.Errorf("server: max_message_size: %d is not between %d and %d", n, MinMessageSize, MaxMessageSize))
	}
	if n := f.Server.UDPReceiveBuffer; n != -1 && (n < 65536 || n > 256<<20) {
		errs.AddAt("server.udp_receive_buffer", fmt.Errorf("server: udp_receive_buffer: %d is not between 65536 and %d bytes (-1: the kernel's default)", n, 256<<20))
	}
	if h := f.Server.GCHeadroom; h != 0 && (h < MinGCHeadroom || h > MaxGCHeadroom) {
		errs.AddAt("server.gc_headroom", fmt.Errorf("server: gc_headroom: %s is not between %s and %s (%s: Go's default collector)", h, MinGCHeadroom, MaxGCHeadroom, MinGCHeadroom))
	}
	if m := f.Server.MemoryLimit; m != 0 && m < MinMemoryLimit {
		errs.AddAt("server.memory_limit", fmt.Errorf("server: memory_limit: %s is less than %s (0: no limit)", m, MinMemoryLimit))
	}
	if d := f.Server.OverloadDelay.D(); d != 0 && (d < MinOverloadDelay || d > MaxOverloadDelay) {
		errs.AddAt("server.overload_delay", fmt.Errorf("server: overload_delay: %s is not between %s and %s (\"0s\": never refuse for it)", d, MinOverloadDelay, MaxOverloadDelay))
	}
	for _, n := range f.Server.EmergencyNumbers {
		if n == "" || strings.Trim(n, "0123456789*#") != "" {
			errs.AddAt("server.emergency_numbers", fmt.Errorf("server: emergency_numbers: %q is not a number dialled (digits, * and #)", n))
		}
	}
	if l := time.Duration(f.Server.Linger); l < MinLinger || l > MaxLinger {
		errs.AddAt("server.linger", fmt.Errorf("server: linger: %s is not between %s and %s", l, MinLinger, MaxLinger))
	}
	if d := time.Duration(f.Server.DialogTimeout); d < time.Minute {
		errs.AddAt("server.dialog_timeout", fmt.Errorf("server: dialog_timeout: %s is shorter than 1m", d))
	}
	if f.Server.MaxConnections < 0 {
		errs.AddAt("server.max_connections", fmt.Errorf("server: max_connections: %d is negative (0: from the limit on open files)", f.Server.MaxConnections))
	}
	if f.Server.MaxConnectionsPerSource < 0 {
		errs.AddAt("server.max_connections_per_source", fmt.Errorf("server: max_connections_per_source: %d is negative (0: the default)", f.Server.MaxConnectionsPerSource))
	}
	f.Server.Trusted = f.Server.Trusted[:0]
	for i, s := range f.Server.TrustedSources {
		p, err := ParseNetwork(s)
		if err != nil {
			errs.AddAt("server.trusted_sources["+strconv.Itoa(i)+"]", fmt.Errorf("server: trusted_sources[%d]: %w", i, err))
			continue
		}
		f.Server.Trusted = append(f.Server.Trusted, p)
	}
	if d := time.Duration(f.Server.HeaderTimeout); d < time.Second || d > 5*time.Minute {
		errs.AddAt("server.header_timeout", fmt.Errorf("server: header_timeout: %s is not between 1s and 5m", d))
	}
	if d := time.Duration(f.Server.IdleTimeout); d < time.Second || d > 24*time.Hour {
		errs.AddAt("server.idle_timeout", fmt.Errorf("server: idle_timeout: %s is not between 1s and 24h", d))
	}
	for _, err := range f.TLS.validate(listensTLS(f.Server.Listen)) {
		errs.addIn("tls", err)
	}
	if f.HTTP.TLS && len(f.TLS.Pairs()) == 0 {
		errs.AddAt("http.tls", fmt.Errorf("http: tls: needs [tls] cert and key, the certificate the listener presents"))
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs.AddAt("log.level", fmt.Errorf("log: level: %q is not one of debug, info, warn, error", f.Log.Level))
	}
	switch f.Log.Format {
	case "text", "json":
	default:
		errs.AddAt("log.format", fmt.Errorf("log: format: %q is not one of text, json", f.Log.Format))
	}
	for _, err := range f.Log.validateOutput() {
		errs.addIn("log", err)
	}
	for _, err := range f.Store.Validate() {
		errs.addIn("store", err)
	}
	for _, err := range f.HTTP.Validate() {
		errs.addIn("http", err)
	}
	for _, err := range f.DNS.Validate() {
		errs.addIn("dns", err)
	}
	for _, err := range f.WebSocket.Validate() {
		errs.addIn("websocket", err)
	}
	for _, err := range f.Capture.Validate() {
		errs.addIn("capture", err)
	}
	f.validateSets(errs)
	if len(f.Stages) == 0 && errs.Len() == 0 {
		errs.Add(fmt.Errorf("no [[stage]]: a pipeline needs at least one stage"))
	}
}

// addIn appends a mistake of a section's validation, which starts with the
// key's name, at that key.
func (e *Errors) addIn(section string, err error) {
	e.AddAt(section+"."+ErrorKey(err), fmt.Errorf("%s: %w", section, err))
}

// ErrorKey returns the key a mistake names: a KeyError's, or the word the
// message starts with when it reads as a key ("cdr_path: ...", "listen[2]:
// ..."), or "".
func ErrorKey(err error) string {
	var ke *KeyError
	if errors.As(err, &ke) {
		if inner := ErrorKey(ke.Err); inner != "" {
			return ke.Key + "." + inner
		}
		return ke.Key
	}
	// The leading "key: " segments of the message, joined: "rule[0]:
	// match: ..." is the key rule[0].match.
	var keys []string
	for msg := err.Error(); ; {
		i := strings.Index(msg, ": ")
		if i <= 0 || !isKeyPath(msg[:i]) {
			break
		}
		keys = append(keys, msg[:i])
		msg = msg[i+2:]
	}
	return strings.Join(keys, ".")
}

// isKeyPath reports whether s reads as a key path: lower-case names,
// digits, dots and indexes.
func isKeyPath(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_.[]", r)) {
			return false
		}
	}
	return true
}

// KeyError is a mistake in one key of a table, named by its path inside
// the table ("fr_timeout", "listen[2]").
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

func decodeStages(errs *Errors, val any) []Stage {
	list, ok := val.([]any)
	if !ok {
		errs.AddAt("stage", fmt.Errorf("stage: must be an array of tables, written [[stage]]"))
		return nil
	}
	stages := make([]Stage, 0, len(list))
	for i, item := range list {
		st := Stage{Index: i + 1, Keys: map[string]any{}}
		table, ok := item.(map[string]any)
		if !ok {
			errs.AddAt(st.Path(""), fmt.Errorf("%s: must be a table", st.Label()))
			continue
		}
		for k, v := range table {
			st.Keys[k] = v
		}
		if use, ok := table["use"].(string); ok && use != "" {
			st.Use = use
		} else {
			errs.AddAt(st.Path("use"), fmt.Errorf("%s: use: missing: every stage names its type, for example use = \"forward\"", st.Label()))
			continue
		}
		delete(st.Keys, "use")
		if w, present := table["when"]; present {
			s, ok := w.(string)
			if !ok {
				errs.AddAt(st.Path("when"), fmt.Errorf("%s: when: must be a string holding an expr rule", st.Label()))
			}
			st.When = s
			delete(st.Keys, "when")
		}
		stages = append(stages, st)
	}
	return stages
}

// decodeSection decodes one section strictly into out, adding an error per
// unknown key or wrong type.
func decodeSection(errs *Errors, name string, val any, out any) {
	if _, ok := val.(map[string]any); !ok {
		errs.AddAt(name, fmt.Errorf("%s: must be a table, written [%s]", name, name))
		return
	}
	for _, err := range DecodeStrict(val, out) {
		errs.addIn(name, err)
	}
}

// DecodeStrict decodes a TOML table into out, a pointer to a struct whose
// fields carry `toml` tags. It returns one error per unknown key and per
// value of the wrong type, each starting with the key's name. Stages use it
// through pipeline.Build.
func DecodeStrict(in any, out any) []error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName: "toml",
		Result:  out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			sizeHook,
			wholeNumberHook,
		),
		ErrorUnset: false,
	})
	if err != nil {
		return []error{err}
	}
	var errs []error
	if err := dec.Decode(in); err != nil {
		errs = append(errs, decodeErrors(err)...)
	}
	// mapstructure stops filling its list of unused keys at the first
	// wrong type, so the unknown keys come from the table itself.
	unused := unknownKeys(in, reflect.TypeOf(out), "")
	sort.Strings(unused)
	for _, k := range unused {
		// A key of an inner table ("check.timout") is one of that
		// table's keys.
		table, name := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			table, name = k[:i], k[i+1:]
		}
		known := keysOf(fieldAt(reflect.TypeOf(out), table))
		errs = append(errs, &KeyError{Key: k, Err: fmt.Errorf("unknown key%s%s", DidYouMean(name, known), knownList(known))})
	}
	return errs
}

// unknownKeys lists the keys of the TOML value in that have no field in t,
// as paths in mapstructure's form ("check.timout", "destination[0].x").
func unknownKeys(in any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v := reflect.ValueOf(in)
	var out []string
	switch {
	case t.Kind() == reflect.Struct && v.Kind() == reflect.Map:
		for _, k := range v.MapKeys() {
			key := fmt.Sprint(k.Interface())
			sub := key
			if path != "" {
				sub = path + "." + key
			}
			f, ok := fieldNamed(t, key)
			if !ok {
				out = append(out, sub)
				continue
			}
			out = append(out, unknownKeys(v.MapIndex(k).Interface(), f.Type, sub)...)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && v.Kind() == reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			out = append(out, unknownKeys(v.Index(i).Interface(), t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case t.Kind() == reflect.Map && v.Kind() == reflect.Map:
		for _, k := range v.MapKeys() {
			out = append(out, unknownKeys(v.MapIndex(k).Interface(), t.Elem(), fmt.Sprintf("%s[%v]", path, k.Interface()))...)
		}
	}
	return out
}

// fieldNamed finds the field of struct t that the key fills, matched as
// mapstructure does: by toml tag or field name, ignoring case.
func fieldNamed(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("toml"), ",")[0]
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldAt returns the type of the field at a path of toml keys in t
// ("check", "destination[0]"), or t itself for "".
func fieldAt(t reflect.Type, path string) reflect.Type {
	if path == "" {
		return t
	}
	for _, key := range strings.Split(path, ".") {
		key, _, _ = strings.Cut(key, "[")
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return t
		}
		next := t
		for i := 0; i < t.NumField(); i++ {
			if strings.Split(t.Field(i).Tag.Get("toml"), ",")[0] == key {
				next = t.Field(i).Type
				break
			}
		}
		if next == t {
			return t
		}
		t = next
	}
	return t
}

func decodeErrors(err error) []error {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		return []error{&KeyError{Key: strings.TrimPrefix(de.Name(), "."), Err: de.Unwrap()}}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, decodeErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			return decodeErrors(inner)
		}
	}
	return []error{err}
}

// keysOf lists the keys of the struct type t (or that t points to, or
// holds a slice of).
func keysOf(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("toml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// knownList lists the known keys for an error message.
func knownList(keys []string) string {
	if len(keys) == 0 {
		return " (this stage takes no keys)"
	}
	return " (known: " + strings.Join(keys, ", ") + ")"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
