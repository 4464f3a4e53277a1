// Package calllog is the calllog stage: it follows calls through the proxy,
// by Call-ID and dialog, and writes an event log (the seed's format or JSON
// lines) and call detail records (CSV or JSON lines). It only observes: it
// never changes a message nor stops one.
package calllog

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "calllog",
		Description: "tracks calls by Call-ID and dialog and writes an event log (seed or json) and call detail records (csv or json)",
		New:         func() pipeline.Stage { return New() },
	})
}

// Defaults of the stage's keys.
const (
	DefaultFormat    = "seed"
	DefaultCDRFormat = "csv"
	DefaultTimeZone  = "Local"
	DefaultMaxCall   = 12 * time.Hour
	DefaultMaxCalls  = 100000
)

// CallLog is the calllog stage.
type CallLog struct {
	// Path is the event log file, relative to server.state_dir (or the
	// config's directory without one); "" (or "-") writes none.
	Path string `toml:"path"`
	// Format is the event log's format: "seed" or "json".
	Format string `toml:"format"`
	// SeedOnly writes, in the seed format, only the events the seed's
	// logger wrote, so that its old logs diff line for line.
	SeedOnly bool `toml:"seed_only"`
	// TimeZone is the zone of the times written: "Local", "UTC" or an IANA
	// name such as "Europe/Ljubljana".
	TimeZone string `toml:"time_zone"`
	// CDRPath is the call detail record file; "" (or "-") writes none.
	CDRPath string `toml:"cdr_path"`
	// CDRFormat is "csv" or "json".
	CDRFormat string `toml:"cdr_format"`
	// MaxCall is how long a call is tracked at most: one whose BYE never
	// came is dropped after it.
	MaxCall config.Duration `toml:"max_call"`
	// MaxCalls is how many calls are tracked at most; past it the oldest
	// is dropped.
	MaxCalls int `toml:"max_calls"`

	loc     *time.Location
	events  *logFile
	cdrs    *logFile
	tracker *tracker
	log     *slog.Logger
	// now is the services' clock, which times the responses.
	now func() time.Time
}

var (
	_ pipeline.RequestStage  = (*CallLog)(nil)
	_ pipeline.ReadOnly      = (*CallLog)(nil)
	_ pipeline.ResponseStage = (*CallLog)(nil)
	_ pipeline.Provisioner   = (*CallLog)(nil)
	_ pipeline.Validator     = (*CallLog)(nil)
	_ pipeline.CleanerUpper  = (*CallLog)(nil)
	_ sink                   = (*CallLog)(nil)
)

// New returns a CallLog with the default settings.
func New() *CallLog {
	return &CallLog{
		Format:    DefaultFormat,
		TimeZone:  DefaultTimeZone,
		CDRFormat: DefaultCDRFormat,
		MaxCall:   config.Duration(DefaultMaxCall),
		MaxCalls:  DefaultMaxCalls,
	}
}

// none reports whether a path setting asks for no file.
func none(path string) bool { return path == "" || path == "-" }

// loadZone returns the location a time_zone names.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time_zone: %q is not a time zone such as \"Local\", \"UTC\" or \"Europe/Ljubljana\": %v", name, err)
	}
	return loc, nil
}

// Validate checks the settings.
func (c *CallLog) Validate() error {
	var errs []error
	if none(c.Path) && none(c.CDRPath) {
		errs = append(errs, errors.New("nothing to write: give path (the event log), cdr_path (the call detail records) or both"))
	}
	switch c.Format {
	case "seed":
	case "json":
		if c.SeedOnly {
			errs = append(errs, errors.New("seed_only: applies to format = \"seed\" only, but format is \"json\""))
		}
	default:
		errs = append(errs, fmt.Errorf("format: %q is not \"seed\" or \"json\"", c.Format))
	}
	switch c.CDRFormat {
	case "csv", "json":
	default:
		errs = append(errs, fmt.Errorf("cdr_format: %q is not \"csv\" or \"json\"", c.CDRFormat))
	}
	if _, err := loadZone(c.TimeZone); err != nil {
		errs = append(errs, err)
	}
	if c.MaxCall <= 0 {
		errs = append(errs, fmt.Errorf("max_call: %q is not a positive duration", c.MaxCall))
	}
	if c.MaxCalls < 1 {
		errs = append(errs, fmt.Errorf("max_calls: %d is not a positive number", c.MaxCalls))
	}
	return errors.Join(errs...)
}

// Provision opens the files (values shared between pipelines, keyed by
// their absolute path) and attaches to the call tracker of the event log
// (or, without one, of the records), which outlives reloads. The pipeline
// releases them.
func (c *CallLog) Provision(b *pipeline.BuildContext) error {
	c.loc, _ = loadZone(c.TimeZone)
	c.log = b.Log
	if c.log == nil {
		c.log = slog.Default()
	}
	svc := b.Services
	if svc == nil {
		return errors.New("no services: the calllog stage needs the shared services")
	}
	c.now = svc.Now
	var evPath, cdrPath string
	var err error
	if !none(c.Path) {
		if evPath, err = filepath.Abs(b.StatePath(c.Path)); err != nil {
			return fmt.Errorf("path: %w", err)
		}
	}
	if !none(c.CDRPath) {
		if cdrPath, err = filepath.Abs(b.StatePath(c.CDRPath)); err != nil {
			return fmt.Errorf("cdr_path: %w", err)
		}
		if cdrPath == evPath {
			return fmt.Errorf("cdr_path: %q is the event log's path too: give the records a file of their own", c.CDRPath)
		}
	}
	if svc.Checking {
		// validate: say whether the files could be written, create none.
		for _, f := range []struct{ key, path string }{{"path", evPath}, {"cdr_path", cdrPath}} {
			if f.path == "" {
				continue
			}
			if err := config.Writable(f.path, b.StateDir); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	if evPath != "" && !svc.Checking {
		if c.events, err = shareFile(b, evPath, c.log); err != nil {
			return fmt.Errorf("path: %w", err)
		}
	}
	if cdrPath != "" && !svc.Checking {
		if c.cdrs, err = shareFile(b, cdrPath, c.log); err != nil {
			return fmt.Errorf("cdr_path: %w", err)
		}
	}
	key := "calllog.tracker:" + evPath
	if evPath == "" {
		key = "calllog.tracker:cdr:" + cdrPath
	}
	maxCall := c.MaxCall.D()
	t, err := pipeline.Share(b, key, func() (*tracker, error) { return newTracker(maxCall), nil })
	if err != nil {
		return err
	}
	t.attach(c, maxCall, c.MaxCalls, c.log)
	c.tracker = t
	return nil
}

// shareFile returns the file at path, open, shared with the other
// pipelines that write to it.
func shareFile(b *pipeline.BuildContext, path string, log *slog.Logger) (*logFile, error) {
	return pipeline.Share(b, "calllog.file:"+path, func() (*logFile, error) { return openLogFile(path, log) })
}

// Cleanup detaches the stage from the tracker, whose sweeper then no
// longer writes through its files; the pipeline releases the tracker and
// the files after it. It works after a Provision that failed halfway.
func (c *CallLog) Cleanup() error {
	if c.tracker != nil {
		c.tracker.detach(c)
		c.tracker = nil
	}
	c.events, c.cdrs = nil, nil
	return nil
}

// ServeRequest follows the requests that start, change and end calls:
// INVITE, ACK and BYE. It always continues.
func (c *CallLog) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	t, req := c.tracker, ctx.Request
	if t == nil || req == nil {
		return pipeline.Continue, nil
	}
	at := ctx.Received
	if at.IsZero() {
		at = c.now()
	}
	switch req.Method {
	case sip.INVITE:
		if inDialog(req) {
			t.reinvite(c, req, at)
		} else {
			t.invite(c, req, ctx.AuthUser, ctx.Attempts, at)
		}
	case sip.ACK:
		t.ack(c, req, at)
	case sip.BYE:
		t.bye(c, req, at)
	}
	return pipeline.Continue, nil
}

// ServeResponse follows the responses going upstream: to REGISTER, to
// INVITE and to REFER. It never fails.
func (c *CallLog) ServeResponse(ctx *pipeline.ResponseContext) error {
	t, req, res := c.tracker, ctx.Request, ctx.Response
	if t == nil || req == nil || res == nil {
		return nil
	}
	at := c.now()
	ok := res.StatusCode >= 200 && res.StatusCode < 300
	switch req.Method {
	case sip.REGISTER:
		if ok {
			c.register(req, at)
		}
	case sip.INVITE:
		if inDialog(req) {
			t.reinviteResponse(req, res)
		} else {
			t.inviteResponse(c, req, res, ctx.AuthUser, ctx.Local, at)
		}
	case sip.REFER:
		if ok {
			t.referResponse(c, req, at)
		}
	}
	return nil
}

// inDialog reports whether a request has a To tag.
func inDialog(req *sip.Request) bool {
	to := req.To()
	return to != nil && tag(to.Params) != ""
}

// register logs the REGISTER whose 2xx goes upstream: REGISTER when it
// binds at least one contact, UNREGISTER when it removes bindings only. A
// query (no Contact) logs nothing.
func (c *CallLog) register(req *sip.Request, at time.Time) {
	to := req.To()
	if to == nil {
		return
	}
	k, ok := registration(req)
	if !ok {
		return
	}
	e := event{at: at, kind: k, user: userOf(&to.Address)}
	if id := req.CallID(); id != nil {
		e.callID = id.Value()
	}
	c.event(e)
}

// headerParser parses header values as sipgo's message parser does.
var headerParser = sip.HeadersParser(sip.DefaultHeadersParser())

// registration says whether a REGISTER binds (REGISTER) or only removes
// (UNREGISTER), by its Contacts' expires parameters and its Expires
// header; ok is false for a query.
func registration(req *sip.Request) (k kind, ok bool) {
	var contacts []*sip.ContactHeader
	for _, h := range req.Headers() {
		if !strings.EqualFold(h.Name(), "Contact") && !strings.EqualFold(h.Name(), "m") {
			continue
		}
		if ch, isContact := h.(*sip.ContactHeader); isContact {
			contacts = append(contacts, ch)
			continue
		}
		parsed, err := headerParser.ParseHeader(nil, []byte("Contact: "+h.Value()))
		if err != nil {
			continue
		}
		for _, p := range parsed {
			if ch, isContact := p.(*sip.ContactHeader); isContact {
				contacts = append(contacts, ch)
			}
		}
	}
	if len(contacts) == 0 {
		return 0, false
	}
	headerExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			headerExpires = v
		}
	}
	for _, ch := range contacts {
		if ch.Address.Wildcard {
			return evUnregister, true
		}
		expires := headerExpires
		for _, kv := range ch.Params {
			if strings.EqualFold(kv.K, "expires") {
				if v, err := strconv.Atoi(strings.TrimSpace(kv.V)); err == nil {
					expires = v
				}
			}
		}
		if expires != 0 {
			return evRegister, true
		}
	}
	return evUnregister, true
}

// event writes e to the event log.
func (c *CallLog) event(e event) {
	if c.events == nil {
		return
	}
	var line func([]byte) []byte
	var preamble func(fileState) string
	if c.Format == "json" {
		line = func(b []byte) []byte { return appendJSONLine(b, &e, c.loc) }
	} else {
		if c.SeedOnly && !e.original() {
			return
		}
		line = func(b []byte) []byte { return appendSeedLine(b, &e, c.loc, c.SeedOnly) }
		preamble = c.seedPreamble
	}
	if err := c.events.write(preamble, line); err != nil {
		c.log.Error("calllog: writing the event log", "error", err)
	}
}

// seedPreamble is the seed's "Starting server" line, in front of the first
// line the process writes to the file, with the time the file's service
// was created: the server's start.
func (c *CallLog) seedPreamble(st fileState) string {
	if !st.First {
		return ""
	}
	return seedHeader(st.Created, c.loc)
}

// record writes r to the call detail records.
func (c *CallLog) record(r record) {
	if c.cdrs == nil {
		return
	}
	var line func([]byte) []byte
	var preamble func(fileState) string
	if c.CDRFormat == "json" {
		line = func(b []byte) []byte { return appendJSONRecordLine(b, &r, c.loc) }
	} else {
		line = func(b []byte) []byte { return appendCSVLine(b, &r, c.loc) }
		preamble = func(st fileState) string {
			if st.Empty {
				return csvHeader
			}
			return ""
		}
	}
	if err := c.cdrs.write(preamble, line); err != nil {
		c.log.Error("calllog: writing the call detail records", "error", err)
	}
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*CallLog) ReadOnly() bool { return true }
