package calllog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// phone is where the requests come from.
const phone = "127.0.0.2:5060"

// chain is a calllog stage under test and the clock it reads: a request
// arrives, and a response goes upstream, at the time the test gives.
type chain struct {
	*stagetest.Harness
	clock *stagetest.Clock
}

// newChain builds a chain of one calllog stage with the given keys, on a
// clock at t0; with svc, over those services, which the test then closes.
func newChain(t *testing.T, keys string, svc *pipeline.Services) (*chain, error) {
	t.Helper()
	return build(t, keys, svc, stagetest.NewClock(t0))
}

// reload builds the chain a reload makes after c: one of keys, over c's
// services and clock.
func (c *chain) reload(t *testing.T, keys string) *chain {
	t.Helper()
	next, err := build(t, keys, c.Services, c.clock)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func build(t *testing.T, keys string, svc *pipeline.Services, clock *stagetest.Clock) (*chain, error) {
	t.Helper()
	opts := []stagetest.Option{stagetest.WithSource(phone), stagetest.WithTime(clock.Now)}
	if svc != nil {
		opts = append(opts, stagetest.WithServices(svc))
	}
	h, err := stagetest.BuildStage(t, "calllog", keys, opts...)
	if err != nil {
		return nil, err
	}
	return &chain{Harness: h, clock: clock}, nil
}

// mustChain is newChain for a config that builds.
func mustChain(t *testing.T, keys string, svc *pipeline.Services) *chain {
	t.Helper()
	c, err := newChain(t, keys, svc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// request runs req through the request stages as received at at.
func (c *chain) request(t *testing.T, req *sip.Request, at time.Time, opts ...stagetest.RequestOption) {
	t.Helper()
	r := c.Request(req, append([]stagetest.RequestOption{stagetest.At(at)}, opts...)...)
	if r.Err != nil || r.Verdict != pipeline.Continue {
		t.Fatalf("request %s: %s", req.Method, r)
	}
}

// response runs res, the answer to req, through the response stages with
// the clock at at; a zero at leaves the clock alone.
func (c *chain) response(t *testing.T, req *sip.Request, res *sip.Response, at time.Time, opts ...stagetest.ResponseOption) {
	t.Helper()
	if !at.IsZero() {
		c.clock.Set(at)
	}
	if r := c.Response(req, res, opts...); r.Err != nil {
		t.Fatalf("response %d: %v", res.StatusCode, r.Err)
	}
}

// made marks a response as made by the proxy when local is true.
func made(local bool) []stagetest.ResponseOption {
	if local {
		return []stagetest.ResponseOption{stagetest.Local()}
	}
	return nil
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
