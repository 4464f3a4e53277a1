package app

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// forwards is the location store's call forwarding, or an error when the
// store keeps none.
func (o *operations) forwards() (location.Forwards, error) {
	fs, ok := o.svc.Location.(location.Forwards)
	if !ok {
		return nil, fmt.Errorf("%w: the location store keeps no call forwarding", errNotFound)
	}
	return fs, nil
}

// forwarding lists the users' call forwarding, of every AOR or one.
func (o *operations) forwarding(aor string) ([]ctl.Forwarding, error) {
	fs, err := o.forwards()
	if err != nil {
		return nil, err
	}
	out := []ctl.Forwarding{}
	if aor != "" {
		f, err := fs.Forwarding(aor)
		if err != nil {
			return nil, err
		}
		if !f.IsZero() {
			out = append(out, ctl.Forwarding{AOR: aor, Forwarding: f})
		}
		return out, nil
	}
	err = fs.EachForwarding(func(aor string, f location.Forwarding) bool {
		out = append(out, ctl.Forwarding{AOR: aor, Forwarding: f})
		return true
	})
	return out, err
}

// setForwarding replaces the call forwarding of aor with the kinds q
// names (unconditional, busy, no_answer, no_answer_after, unavailable);
// none removes it.
func (o *operations) setForwarding(aor string, q url.Values) ([]ctl.Forwarding, error) {
	fs, err := o.forwards()
	if err != nil {
		return nil, err
	}
	if aor == "" {
		return nil, fmt.Errorf("%w: no aor", errInvalid)
	}
	f := location.Forwarding{
		Unconditional: q.Get("unconditional"), Busy: q.Get("busy"),
		NoAnswer: q.Get("no_answer"), Unavailable: q.Get("unavailable"),
	}
	for k := range q {
		switch k {
		case "aor", "unconditional", "busy", "no_answer", "unavailable", "no_answer_after":
		default:
			return nil, fmt.Errorf("%w: unknown kind %q (unconditional, busy, no_answer, no_answer_after, unavailable)", errInvalid, k)
		}
	}
	if s := q.Get("no_answer_after"); s != "" {
		if f.NoAnswerAfter, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("%w: no_answer_after: %q is not a number of seconds", errInvalid, s)
		}
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if err := o.knownSets(f); err != nil {
		return nil, err
	}
	if err := fs.SetForwarding(aor, f); err != nil {
		return nil, err
	}
	return o.forwarding(aor)
}

// knownSets checks that the sets f names are declared by the config in
// force: a later reload may drop one, and the forward then is not made.
func (o *operations) knownSets(f location.Forwarding) error {
	p := o.eng.Pipeline()
	if p == nil {
		return nil
	}
	for _, kt := range f.Kinds() {
		name, ok := strings.CutPrefix(kt[1], "set:")
		if ok && p.Config.FindSet(name) == nil {
			return fmt.Errorf("%w: %s: unknown set %q (sets: %s)", errInvalid, kt[0], name, p.Config.SetNames())
		}
	}
	return nil
}
