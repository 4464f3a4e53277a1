package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/console"
	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/capture"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// The recorder's bounds: the messages of the last recordCalls calls (and
// of every traced call), recordBytes bytes at most, and the records of
// the last recordCDRs calls.
const (
	recordCalls = 200
	recordBytes = 16 << 20
	recordCDRs  = 1000
)

// consoleToken returns the admin token: http.token, or else the one in
// the state folder's console.token, made at the first start (mode 0600).
func consoleToken(cfg *config.File) (token, file string, err error) {
	if cfg.HTTP.Token != "" {
		return cfg.HTTP.Token, "", nil
	}
	file = cfg.StatePath("console.token")
	if data, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(data))) >= 16 {
		return strings.TrimSpace(string(data)), file, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", file, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token = hex.EncodeToString(b)
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		return "", file, err
	}
	return token, file, nil
}

// consoleBackend serves the console from the admin operations.
type consoleBackend struct{ o *operations }

var _ console.Backend = consoleBackend{}

func (b consoleBackend) Overview() console.Overview {
	v := console.Overview{Responses: map[string]int{"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "6xx": 0}}
	active, recent := b.Calls()
	v.CallsInProgress = len(active)
	since := time.Now().Add(-10 * time.Second)
	for _, c := range append(active, recent...) {
		if c.Start.After(since) {
			v.CallsPerSecond += 0.1
		}
	}
	if g := b.o.svc.Metrics; g != nil {
		if counts, err := g.Counts(); err == nil {
			for _, m := range counts.Messages {
				if m.Direction == "out" && m.Code >= 100 && m.Code < 700 {
					v.Responses[fmt.Sprintf("%dxx", m.Code/100)] += int(m.Count)
				}
			}
		}
	}
	held := b.o.svc.Location.Count
	if h, ok := b.o.svc.Location.(location.Holder); ok {
		held = h.Held
	}
	v.AORs, v.Registrations = held()
	return v
}

func (b consoleBackend) Registrations(q string) (any, error) {
	regs, err := b.o.registrations("")
	if err != nil || q == "" {
		return regs, err
	}
	out := regs[:0]
	for _, r := range regs {
		match := strings.Contains(r.AOR, q)
		for _, bd := range r.Bindings {
			match = match || strings.Contains(bd.Contact, q) || strings.Contains(bd.Received, q) || strings.Contains(bd.UserAgent, q)
		}
		if match {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b consoleBackend) Unregister(aor, contact string) (any, error) {
	return b.o.unregister(aor, contact)
}

// Calls returns the calls in progress and the ended ones the recorder
// keeps; calls the call trackers hold that it has no record of are in
// progress too.
func (b consoleBackend) Calls() (active, recent []console.Call) {
	seen := map[string]bool{}
	if b.o.rec != nil {
		for _, c := range b.o.rec.CDRs() {
			seen[c.CallID] = true
			if c.End.IsZero() {
				active = append(active, c)
			} else {
				recent = append(recent, c)
			}
		}
	}
	for _, c := range b.o.calls() {
		if !seen[c.CallID] {
			active = append(active, console.Call{CallID: c.CallID, From: c.Caller, To: c.Callee, State: c.State, Start: c.Start, Answer: c.Answered})
		}
	}
	return active, recent
}

func (b consoleBackend) Call(callID string) (console.CallDetail, bool) {
	if b.o.rec == nil {
		return console.CallDetail{}, false
	}
	msgs, ok := b.o.rec.Call(callID)
	if !ok {
		return console.CallDetail{}, false
	}
	d := console.CallDetail{Messages: msgs, Parties: parties(msgs)}
	if c, ok := b.o.rec.CDR(callID); ok {
		d.Call = c
	} else {
		d.Call = console.Call{CallID: callID}
	}
	return d, true
}

// parties lists the addresses of a call's messages in the order they
// appear, with "proxy" after the first.
func parties(msgs []capture.Message) []string {
	out := []string{}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range msgs {
		add(m.Src)
		add(m.Dst)
	}
	return out
}

func (b consoleBackend) Config() console.ConfigView {
	path, data, err := b.o.configFile()
	masked, _ := maskToken(string(data))
	v := console.ConfigView{Path: path, Text: masked, Hash: fileHash(data)}
	if err != nil {
		v.ReadOnly = err.Error()
		return v
	}
	v.ReadOnly = readOnly(path)
	v.Writable = v.ReadOnly == ""
	return v
}

func (b consoleBackend) Validate(text string) []console.ConfigError {
	_, data, _ := b.o.configFile()
	text, bad := unmaskToken(text, string(data))
	if bad != nil {
		return []console.ConfigError{*bad}
	}
	return b.o.validateText(text)
}

// Save saves text with the file's token in place of its mask; when the
// file changed since it was loaded, saveConfig refuses it by its hash.
func (b consoleBackend) Save(text, hash, session string) (console.SaveResult, error) {
	_, data, err := b.o.configFile()
	if err != nil {
		return console.SaveResult{}, err
	}
	text, bad := unmaskToken(text, string(data))
	if bad != nil {
		return console.SaveResult{Errors: []console.ConfigError{*bad}}, console.ErrInvalid
	}
	return b.o.saveConfig(text, hash, session)
}

func (b consoleBackend) Diff() console.Diff { return b.o.configDiff() }

func (b consoleBackend) Reloads() []console.Reload {
	out := []console.Reload{}
	for _, r := range b.o.r.History() {
		out = append(out, console.Reload{Time: r.At, Hash: r.Hash, Outcome: r.Result, Cause: r.Cause, Session: r.Session})
	}
	return out
}

// consoleURL is the console's address on the [http] listener h.
func consoleURL(h config.HTTP) string {
	listen, scheme := h.Listen, "http://"
	if h.TLS {
		scheme = "https://"
	}
	ap, err := netip.ParseAddrPort(listen)
	if err == nil && ap.Addr().IsUnspecified() {
		listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String()
	}
	return scheme + listen + "/console/"
}

// recorderFor returns the console's recorder of calls, or nil without an
// [http] listener or with console = false: the recorder feeds only the
// console, which only that listener serves (both change on restart), so
// without it no message pays for recording.
func recorderFor(h config.HTTP) *capture.Recorder {
	if h.Listen == "" || !h.ConsoleOn() {
		return nil
	}
	return capture.NewRecorder(recordCalls, recordBytes, recordCDRs)
}

// startConsole returns the [http] settings, with the admin token from the
// state folder when the config has none, and the web console, or nil
// when it cannot run (logged: the rest of the listener serves all the
// same). It logs the console's address and where the token is, never the
// token.
func startConsole(cfg *config.File, ops *operations, log *slog.Logger) (config.HTTP, http.Handler) {
	httpCfg := cfg.HTTP
	token, file, err := consoleToken(cfg)
	if err != nil {
		log.Error("console off", "error", fmt.Errorf("%s: the admin token: %w", file, err))
		return httpCfg, nil
	}
	httpCfg.Token = token
	if !cfg.HTTP.ConsoleOn() {
		log.Info("console off", "reason", "http.console = false")
		return httpCfg, nil
	}
	h, err := console.New(console.Options{Token: token, Listen: cfg.HTTP.Listen, TLS: cfg.HTTP.TLS, Backend: consoleBackend{ops}, Log: log})
	if err != nil {
		log.Error("console off", "error", fmt.Errorf("%s: http: listen: %w", httpListenAt(cfg), err))
		return httpCfg, nil
	}
	where := "http.token"
	if file != "" {
		where = file
		if abs, err := filepath.Abs(file); err == nil {
			where = abs // the log names it wherever it is read from
		}
	}
	log.Info("console", "url", consoleURL(cfg.HTTP), "token", where)
	return httpCfg, h
}

// checkConsole is `validate`'s warning, on stdout, for a console that
// cannot start: the [http] listener is off loopback and not over TLS. It
// is a warning, not an error, because such a listener still serves
// /metrics and the admin API, as it did before the console.
func checkConsole(cfg *config.File, stdout io.Writer) {
	h := cfg.HTTP
	if h.Listen == "" || !h.ConsoleOn() || h.TLS || console.Loopback(h.Listen) {
		return
	}
	fmt.Fprintf(stdout, "%s: http: listen: warning: the console stays off: %v\n", httpListenAt(cfg), console.ErrNeedsTLS)
}

// httpListenAt returns where http.listen is written: "file:line:column",
// or the file's name.
func httpListenAt(cfg *config.File) string {
	if pos, ok := cfg.Positions.Find("http.listen"); ok {
		return fmt.Sprintf("%s:%d:%d", cfg.Path, pos.Line, pos.Column)
	}
	return cfg.Path
}
