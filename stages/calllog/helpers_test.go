package calllog

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

// newServices returns the services a test pipeline borrows.
func newServices() *pipeline.Services {
	return &pipeline.Services{
		Log:     slog.Default(),
		Sockets: []pipeline.Socket{{Transport: "UDP", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}},
	}
}

// buildWith returns the pipeline of a config file's text over svc.
func buildWith(t *testing.T, svc *pipeline.Services, text string) (*pipeline.Pipeline, error) {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return pipeline.Build(cfg, svc)
}

// stageConfig is a config of one calllog stage with the given keys.
func stageConfig(keys string) string {
	return "[[stage]]\nuse = \"calllog\"\n" + keys + "\n"
}

// parseMsg parses raw SIP text with LF line ends; the Content-Length is
// set to the body's.
func parseMsg(t *testing.T, raw string) sip.Message {
	t.Helper()
	raw = strings.TrimLeft(raw, "\n")
	head, body, _ := strings.Cut(raw, "\n\n")
	body = strings.TrimRight(body, "\n")
	if body != "" {
		body += "\n"
	}
	body = strings.ReplaceAll(body, "\n", "\r\n")
	var lines []string
	for _, l := range strings.Split(head, "\n") {
		if strings.HasPrefix(strings.ToLower(l), "content-length:") {
			continue
		}
		lines = append(lines, l)
	}
	lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)))
	text := strings.Join(lines, "\r\n") + "\r\n\r\n" + body
	msg, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return msg
}

var phoneSrc = pipeline.Source{IP: netip.MustParseAddr("127.0.0.2"), Port: 5060}

// serveRequest runs req through p as received at at.
func serveRequest(t *testing.T, p *pipeline.Pipeline, req *sip.Request, at time.Time) {
	t.Helper()
	ctx := pipeline.NewContext(p, req, phoneSrc, "UDP")
	ctx.Received = at
	v, err := p.ServeRequest(ctx, nil)
	if err != nil || v != pipeline.Continue {
		t.Fatalf("ServeRequest %s: %v, %v", req.Method, v, err)
	}
}

// serveResponse runs res, the answer to req, through p's response stages
// with the clock at at (the real clock if at is zero, for goroutines).
func serveResponse(t *testing.T, p *pipeline.Pipeline, req *sip.Request, res *sip.Response, local bool, at time.Time) {
	t.Helper()
	if !at.IsZero() {
		old := now
		now = func() time.Time { return at }
		defer func() { now = old }()
	}
	rc := pipeline.NewResponseContext(p, req, res, local, phoneSrc, "UDP")
	if err := p.ServeResponse(rc, nil); err != nil {
		t.Fatalf("ServeResponse %d: %v", res.StatusCode, err)
	}
}

// readLines returns the lines of a file.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// fields returns each line without its time (everything after the first
// comma), the header lines left out.
func fields(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "=====") {
			continue
		}
		_, rest, _ := strings.Cut(l, ",")
		out = append(out, rest)
	}
	return out
}

// tempPaths returns the event log and CDR paths in a new directory.
func tempPaths(t *testing.T) (events, cdrs string) {
	dir := t.TempDir()
	return filepath.Join(dir, "events.log"), filepath.Join(dir, "cdr.csv")
}
