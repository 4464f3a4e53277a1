package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// timeout bounds one command; a reload of a large config takes the most.
const timeout = 30 * time.Second

// command is one ctl command: its arguments, the admin request it makes,
// and how it shows the answer to a person.
type command struct {
	name, args, help string
	min, max         int
	method           string
	// path returns the request's path and query from the arguments.
	path func(args []string) string
	// show prints a 2xx answer's body as a person reads it.
	show func(w io.Writer, body []byte) error
}

var commands = []command{
	{"registrations", "[AOR]", "the registered contacts, of every AOR or one", 0, 1, http.MethodGet,
		func(a []string) string { return withQuery("/admin/registrations", "aor", arg(a, 0)) }, showRegistrations},
	{"unregister", "AOR [CONTACT]", "remove an AOR's bindings, or the one with that contact", 1, 2, http.MethodDelete,
		func(a []string) string {
			return withQuery("/admin/registrations", "aor", a[0], "contact", arg(a, 1))
		}, showUnregistered},
	{"calls", "", "the calls in progress", 0, 0, http.MethodGet,
		func([]string) string { return "/admin/calls" }, showCalls},
	{"outbound", "", "the proxy's own registrations to providers (trunks)", 0, 0, http.MethodGet,
		func([]string) string { return "/admin/outbound" }, showOutbound},
	{"stats", "", "messages by method and status code, and what each stage did", 0, 0, http.MethodGet,
		func([]string) string { return "/admin/stats" }, showStats},
	{"reload", "", "reload the config; exits 1 with every mistake when it does not build", 0, 0, http.MethodPost,
		func([]string) string { return "/admin/reload" }, showOutcome},
	{"trace", "USER on|off", "trace a user's messages live (both traces) until restart", 2, 2, http.MethodPost,
		func(a []string) string { return withQuery("/admin/trace", "user", a[0], "state", a[1]) }, showOverrides},
	{"config", "", "the config file in force, its hash, the last reload and the overrides", 0, 0, http.MethodGet,
		func([]string) string { return "/admin/config" }, showConfig},
	{"destinations", "", "the destination sets' destinations and their health", 0, 0, http.MethodGet,
		func([]string) string { return "/admin/destinations" }, showDestinations},
	{"drain", "URI [SET]", "send no new request to a destination (in every set, or in SET)", 1, 2, http.MethodPost,
		func(a []string) string {
			return withQuery("/admin/destinations/drain", "uri", a[0], "set", arg(a, 1))
		}, showDestinations},
	{"undrain", "URI [SET]", "let a drained destination take requests again", 1, 2, http.MethodPost,
		func(a []string) string {
			return withQuery("/admin/destinations/undrain", "uri", a[0], "set", arg(a, 1))
		}, showDestinations},
	{"forwarding", "[AOR]", "the users' call forwarding, of every AOR or one", 0, 1, http.MethodGet,
		func(a []string) string { return withQuery("/admin/forwarding", "aor", arg(a, 0)) }, showForwarding},
	{"forward", "AOR [KIND=TARGET]...", "set a user's call forwarding (unconditional, busy, no_answer, no_answer_after, unavailable); none: remove it", 1, 6, http.MethodPost,
		forwardPath, showForwarding},
	{"log-level", "LEVEL", "set the log level until restart: debug, info, warn, error, or config (back to [log] level)", 1, 1, http.MethodPost,
		func(a []string) string { return withQuery("/admin/log-level", "level", a[0]) }, showOverrides},
}

// withQuery appends the query of key, value pairs whose value is not empty.
func withQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// Main runs `switchboard ctl` with its arguments and returns the exit code:
// 0, 1 when the proxy cannot be reached or refuses, 2 for usage.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	cfgPath := fs.String("config", "config.toml", "the running proxy's config file, which names its control socket")
	socket := fs.String("socket", "", "the control socket (default: found from the config)")
	asJSON := fs.Bool("json", false, "print the answer as JSON, for scripts")
	fs.Usage = func() {
		fmt.Fprintln(&usage, "usage: switchboard ctl [-config FILE] [-socket PATH] [-json] COMMAND [ARGS]")
		for _, c := range commands {
			fmt.Fprintf(&usage, "  %-30s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
		}
		fs.PrintDefaults()
	}
	// failed prints the usage: to stdout, exit 0, when asked for with -h.
	failed := func(err error) int {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = stdout.Write(usage.Bytes())
			return 0
		}
		_, _ = stderr.Write(usage.Bytes())
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return failed(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return failed(nil)
	}
	name := fs.Arg(0)
	// Flags may follow the command and its arguments too: ctl
	// registrations alice -json.
	var rest []string
	for more := fs.Args()[1:]; ; more = fs.Args()[1:] {
		if err := fs.Parse(more); err != nil {
			return failed(err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
	}
	c, ok := find(name)
	if !ok {
		fmt.Fprintf(stderr, "switchboard ctl: unknown command %q\n", name)
		fs.Usage()
		return failed(nil)
	}
	if len(rest) < c.min || len(rest) > c.max {
		fmt.Fprintf(stderr, "usage: switchboard ctl %s %s\n", c.name, c.args)
		return 2
	}
	path := *socket
	var unread error
	if path == "" {
		var cfg *config.File
		cfg, unread = socketConfig(*cfgPath)
		path = SocketPath(cfg)
	}
	status, body, err := call(path, c.method, c.path(rest))
	if err != nil {
		fmt.Fprintf(stderr, "switchboard ctl: no proxy answers on %s: %v\n", path, err)
		if unread != nil {
			fmt.Fprintf(stderr, "switchboard ctl: %s does not parse, so it names no socket and ctl tried the default one: %v\n", *cfgPath, unread)
		}
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
	}
	if status/100 != 2 {
		if !*asJSON {
			showProblem(stderr, status, body)
		}
		return 1
	}
	if !*asJSON {
		if err := c.show(stdout, body); err != nil {
			fmt.Fprintf(stderr, "switchboard ctl: %s: %v\n", c.name, err)
			return 1
		}
	}
	return 0
}

func find(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// socketConfig reads the config for its socket's path. A config with
// mistakes (the broken edit ctl reload is about to refuse) names it as far
// as it decodes; one that cannot be read or parsed names only its folder,
// and the error says why.
func socketConfig(path string) (*config.File, error) {
	cfg, err := config.Load(path)
	if cfg != nil {
		return cfg, nil
	}
	return &config.File{Path: path}, err
}

// call makes one admin request over the control socket.
func call(socket, method, path string) (int, []byte, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://switchboard"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// showProblem prints a refusal: the error, and every mistake of a reload.
func showProblem(w io.Writer, status int, body []byte) {
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || (p.Error == "" && len(p.Errors) == 0) {
		fmt.Fprintf(w, "switchboard ctl: the proxy answered %d: %s\n", status, strings.TrimSpace(string(body)))
		return
	}
	for _, e := range p.Errors {
		fmt.Fprintln(w, e)
	}
	if p.Error != "" {
		fmt.Fprintf(w, "switchboard ctl: %s\n", p.Error)
	}
}
