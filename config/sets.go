package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Set is one [[set]]: a named group of destinations (gateways, trunks,
// PBXs) that the dispatch stage sends requests to, as Kamailio's
// dispatcher list does, with the algorithm that picks among them, the
// failover between them and their health checks.
type Set struct {
	// Index is the set's place in the file, from 1.
	Index int `toml:"-"`
	// Name is what stages and other sets call it by.
	Name string `toml:"name"`
	// Algorithm picks the destination of a request (SetAlgorithms).
	Algorithm string `toml:"algorithm"`
	// Attempts bounds the destinations one request is sent to, one after
	// the other (serial failover), the first included.
	Attempts int `toml:"attempts"`
	// FailoverTimeout moves a request on to the next destination when the
	// current one sent no response at all in this time.
	FailoverTimeout Duration `toml:"failover_timeout"`
	// FailoverCodes are final responses that move a request on to the
	// next destination, besides 503 and a transport error.
	FailoverCodes []int `toml:"failover_codes"`
	// Fallback is the set a request goes to when no destination of this
	// one is alive; empty answers 503 with Retry-After instead.
	Fallback string `toml:"fallback"`
	// RetryAfter is the Retry-After of that 503 when no destination says
	// when it is back.
	RetryAfter Duration `toml:"retry_after"`
	// Check is the [set.check] table: the OPTIONS health checks.
	Check SetCheck `toml:"check"`
	// Destinations are the [[set.destination]] tables.
	Destinations []SetDestination `toml:"destination"`
}

// SetDestination is one [[set.destination]].
type SetDestination struct {
	// URI is a SIP URI; its host may be an IP address or a DNS name
	// (resolved by RFC 3263, each address checked on its own).
	URI string `toml:"uri"`
	// Weight is its share of requests under "weighted" (default 1).
	Weight int `toml:"weight"`
	// Priority orders destinations under "priority": lowest first, as
	// in SRV records.
	Priority int `toml:"priority"`
}

// SetCheck is a set's [set.check] table.
type SetCheck struct {
	// Interval between two OPTIONS to each address; "0s" checks nothing
	// (passive checks still apply).
	Interval Duration `toml:"interval"`
	// Timeout is how long an OPTIONS waits for an answer.
	Timeout Duration `toml:"timeout"`
	// DownAfter failures in a row (checks or live requests) mark an
	// address down; UpAfter successful checks in a row mark it up.
	DownAfter int `toml:"down_after"`
	UpAfter   int `toml:"up_after"`
	// AliveCodes are the answers that count as alive; empty: any answer.
	AliveCodes []int `toml:"alive_codes"`
	// From is the From URI of the OPTIONS.
	From string `toml:"from"`
}

// SetAlgorithms are the values of a set's algorithm.
var SetAlgorithms = []string{"round_robin", "weighted", "priority", "hash_call_id", "hash_caller", "hash_callee", "least_calls"}

// Defaults of a [[set]].
const (
	DefaultSetAlgorithm       = "round_robin"
	DefaultSetAttempts        = 3
	DefaultSetFailoverTimeout = 4 * time.Second
	DefaultSetRetryAfter      = 30 * time.Second
	DefaultCheckInterval      = 10 * time.Second
	DefaultCheckTimeout       = 2 * time.Second
	DefaultCheckDownAfter     = 3
	DefaultCheckUpAfter       = 2
	DefaultCheckFrom          = "sip:switchboard@localhost"
)

// Label names the set in errors: `set 2 (gateways)`.
func (s *Set) Label() string {
	if s.Name == "" {
		return fmt.Sprintf("set %d", s.Index)
	}
	return fmt.Sprintf("set %d (%s)", s.Index, s.Name)
}

// FindSet returns the set called name, or nil.
func (f *File) FindSet(name string) *Set {
	for i := range f.Sets {
		if f.Sets[i].Name == name {
			return &f.Sets[i]
		}
	}
	return nil
}

// SetNames returns the names of the sets, for errors.
func (f *File) SetNames() string {
	names := f.setNames()
	if len(names) == 0 {
		return "none: declare one with [[set]]"
	}
	for i, name := range names {
		names[i] = strconv.Quote(name)
	}
	return strings.Join(names, ", ")
}

func (f *File) setNames() []string {
	names := make([]string, 0, len(f.Sets))
	for _, s := range f.Sets {
		names = append(names, s.Name)
	}
	return names
}

func decodeSets(errs *Errors, val any) []Set {
	list, ok := val.([]any)
	if !ok {
		errs.AddAt("set", fmt.Errorf("set: must be an array of tables, written [[set]]"))
		return nil
	}
	sets := make([]Set, 0, len(list))
	for i, item := range list {
		s := Set{Index: i + 1}
		if _, ok := item.(map[string]any); !ok {
			errs.AddAt(s.Path(""), fmt.Errorf("%s: must be a table", s.Label()))
			continue
		}
		if name, ok := item.(map[string]any)["name"].(string); ok {
			s.Name = name // for the label of the errors below
		}
		for _, err := range DecodeStrict(item, &s) {
			errs.AddAt(s.Path(CountFromOne(ErrorKey(err))), fmt.Errorf("%s: %w", s.Label(), err))
		}
		check, _ := item.(map[string]any)["check"].(map[string]any)
		_, interval := check["interval"]
		s.defaults(interval)
		sets = append(sets, s)
	}
	return sets
}

// Path is the key path of key in the set ("set[2].check.timeout"), for
// the position of a mistake; "" is the [[set]] line.
func (s *Set) Path(key string) string {
	p := "set[" + strconv.Itoa(s.Index) + "]"
	if key == "" {
		return p
	}
	return p + "." + key
}

// defaults fills what the set left out; interval says whether it set
// check.interval, whose "0s" turns the checks off.
func (s *Set) defaults(interval bool) {
	if s.Algorithm == "" {
		s.Algorithm = DefaultSetAlgorithm
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultSetAttempts
	}
	if s.FailoverTimeout == 0 {
		s.FailoverTimeout = Duration(DefaultSetFailoverTimeout)
	}
	if s.RetryAfter == 0 {
		s.RetryAfter = Duration(DefaultSetRetryAfter)
	}
	c := &s.Check
	if c.Interval == 0 && !interval {
		c.Interval = Duration(DefaultCheckInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultCheckTimeout)
	}
	if c.DownAfter == 0 {
		c.DownAfter = DefaultCheckDownAfter
	}
	if c.UpAfter == 0 {
		c.UpAfter = DefaultCheckUpAfter
	}
	if c.From == "" {
		c.From = DefaultCheckFrom
	}
	for i := range s.Destinations {
		if s.Destinations[i].Weight == 0 {
			s.Destinations[i].Weight = 1
		}
	}
}

// validateSets adds an error for each mistake in the sets, each starting
// with the set's label and key.
func (f *File) validateSets(errs *Errors) {
	seen := map[string]bool{}
	for i := range f.Sets {
		s := &f.Sets[i]
		for _, m := range s.validate() {
			errs.AddAt(s.Path(m.key), fmt.Errorf("%s: %w", s.Label(), m.err))
		}
		if s.Name != "" && seen[s.Name] {
			errs.AddAt(s.Path("name"), fmt.Errorf("%s: name: %q is the name of an earlier set", s.Label(), s.Name))
		}
		seen[s.Name] = true
		if s.Fallback != "" && f.FindSet(s.Fallback) == nil {
			errs.AddAt(s.Path("fallback"), fmt.Errorf("%s: fallback: unknown set %q%s (sets: %s)", s.Label(), s.Fallback, DidYouMean(s.Fallback, f.setNames()), f.SetNames()))
		}
		if s.Fallback != "" && f.fallbackLoops(s) {
			errs.AddAt(s.Path("fallback"), fmt.Errorf("%s: fallback: %q leads back to this set", s.Label(), s.Fallback))
		}
	}
}

// fallbackLoops reports whether following s's fallbacks comes back to s.
func (f *File) fallbackLoops(s *Set) bool {
	for next, n := f.FindSet(s.Fallback), 0; next != nil && n <= len(f.Sets); next, n = f.FindSet(next.Fallback), n+1 {
		if next.Name == s.Name {
			return true
		}
	}
	return false
}

// setMistake is a mistake in a set, at a key path inside it
// ("check.timeout", "destination[2].uri").
type setMistake struct {
	key string
	err error
}

func (s *Set) validate() []setMistake {
	var errs []setMistake
	// add adds the mistake at key, whose message starts with the key as
	// users read it.
	add := func(key, format string, a ...any) {
		errs = append(errs, setMistake{key: key, err: fmt.Errorf(format, a...)})
	}
	if s.Name == "" {
		add("name", "name: missing: every set has a name, for example name = \"gateways\"")
	}
	if !slices.Contains(SetAlgorithms, s.Algorithm) {
		add("algorithm", "algorithm: %q is not one of %s", s.Algorithm, strings.Join(SetAlgorithms, ", "))
	}
	if s.Attempts < 1 {
		add("attempts", "attempts: %d is not positive", s.Attempts)
	}
	if d := s.FailoverTimeout.D(); d < 100*time.Millisecond || d > 32*time.Second {
		add("failover_timeout", "failover_timeout: %s is not between 100ms and 32s", d)
	}
	for i, c := range s.FailoverCodes {
		if c < 300 || c > 599 {
			add("failover_codes", "failover_codes[%d]: %d is not a 3xx, 4xx or 5xx code (no failover after a 2xx or a 6xx)", i, c)
		}
	}
	if d := s.RetryAfter.D(); d < time.Second {
		add("retry_after", "retry_after: %s is under 1s", d)
	}
	c := s.Check
	if d := c.Interval.D(); d < 0 || (d > 0 && d < 100*time.Millisecond) {
		add("check.interval", "check: interval: %s is under 100ms (0s: no checks)", d)
	}
	if d := c.Timeout.D(); d < 10*time.Millisecond || d > 32*time.Second {
		add("check.timeout", "check: timeout: %s is not between 10ms and 32s", d)
	}
	if c.DownAfter < 1 {
		add("check.down_after", "check: down_after: %d is not positive", c.DownAfter)
	}
	if c.UpAfter < 1 {
		add("check.up_after", "check: up_after: %d is not positive", c.UpAfter)
	}
	for i, code := range c.AliveCodes {
		if code < 100 || code > 699 {
			add("check.alive_codes", "check: alive_codes[%d]: %d is not a SIP status code", i, code)
		}
	}
	if err := parseSIPURI(c.From); err != nil {
		add("check.from", "check: from: %v", err)
	}
	if len(s.Destinations) == 0 {
		add("destination", "destination: none: a set needs at least one [[set.destination]]")
	}
	for i, d := range s.Destinations {
		if err := parseSIPURI(d.URI); err != nil {
			add(fmt.Sprintf("destination[%d].uri", i+1), "destination %d: uri: %v", i+1, err)
		}
		if d.Weight < 0 {
			add(fmt.Sprintf("destination[%d].weight", i+1), "destination %d: weight: %d is negative", i+1, d.Weight)
		}
	}
	return errs
}

// parseSIPURI checks that s is a sip: or sips: URI with a host.
func parseSIPURI(s string) error {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return fmt.Errorf("%q is not a SIP URI: %w", s, err)
	}
	if !strings.EqualFold(u.Scheme, "sip") && !strings.EqualFold(u.Scheme, "sips") {
		return fmt.Errorf("%q is not a sip: or sips: URI", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}
