package app

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
	"github.com/switchboard-sip/switchboard/cmd/switchboard/logs"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/capture"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// operations are the admin operations, each implemented once: the HTTP
// admin API and the control socket (switchboard ctl) serve the same
// handlers (see adminHandler), which call these.
type operations struct {
	eng *engine.Engine
	svc *pipeline.Services
	r   *reloader
	// logs takes the level override; nil in tests without one.
	logs *logs.Logger
	// rec keeps the calls' messages and records for the console; nil
	// without one.
	rec *capture.Recorder
}

// The kinds of refusal, which the HTTP answer's status tells apart.
var (
	errInvalid  = errors.New("invalid")
	errNotFound = errors.New("not found")
)

// registrations returns the live bindings of every AOR, or of aor.
func (o *operations) registrations(aor string) ([]ctl.Registration, error) {
	now := time.Now()
	out := []ctl.Registration{}
	if aor != "" {
		bs, _, err := o.svc.Location.Lookup(aor, now)
		if err != nil {
			return nil, err
		}
		if len(bs) > 0 {
			out = append(out, registration(aor, bs, now))
		}
		return out, nil
	}
	err := o.svc.Location.Each(now, func(aor string, bs []location.Binding) bool {
		out = append(out, registration(aor, bs, now))
		return true
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AOR < out[j].AOR })
	return out, nil
}

func registration(aor string, bs []location.Binding, now time.Time) ctl.Registration {
	r := ctl.Registration{AOR: aor}
	for _, b := range bs {
		r.Bindings = append(r.Bindings, ctl.Binding{
			Contact: b.Contact, Instance: b.Instance, Expires: b.Expires, ExpiresIn: int(b.Expires.Sub(now).Seconds()),
			Received: b.Received, Transport: b.Transport, UserAgent: b.UserAgent, NAT: b.NAT, Node: b.Node, Local: b.Local, Path: b.Path, CallID: b.CallID, CSeq: b.CSeq,
		})
	}
	return r
}

// unregister removes the bindings of aor, or only the one whose contact is
// contact, as a REGISTER with Expires 0 would.
func (o *operations) unregister(aor, contact string) (ctl.Unregistered, error) {
	if aor == "" {
		return ctl.Unregistered{}, fmt.Errorf("%w: no aor", errInvalid)
	}
	removed, now := 0, time.Now()
	kept, err := o.svc.Location.Update(aor, now, func(current []location.Binding) ([]location.Binding, error) {
		kept := slices.DeleteFunc(slices.Clone(current), func(b location.Binding) bool {
			return contact == "" || b.Contact == contact
		})
		removed = len(current) - len(kept)
		return kept, nil
	})
	if err != nil {
		return ctl.Unregistered{}, err
	}
	if removed == 0 {
		if contact != "" {
			return ctl.Unregistered{}, fmt.Errorf("%w: %s has no binding with contact %s", errNotFound, aor, contact)
		}
		return ctl.Unregistered{}, fmt.Errorf("%w: %s has no bindings", errNotFound, aor)
	}
	// The removed bindings behind NAT are pinged no more.
	if o.svc.Keepalive != nil {
		o.svc.Keepalive.Sync(aor, kept, nil, now)
	}
	return ctl.Unregistered{AOR: aor, Removed: removed}, nil
}

// calls returns the calls in progress, oldest first.
func (o *operations) calls() []pipeline.CallInfo {
	calls := o.svc.Calls()
	if calls == nil {
		calls = []pipeline.CallInfo{}
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	return calls
}

// outbound returns the state of the proxy's registrations to providers
// (the trunk stages' register_aor), by AOR.
func (o *operations) outbound() []pipeline.RegistrationInfo {
	regs := o.svc.Registrations()
	if regs == nil {
		regs = []pipeline.RegistrationInfo{}
	}
	sort.Slice(regs, func(i, j int) bool { return regs[i].AOR < regs[j].AOR })
	return regs
}

// keepaliveView is what the keepalive pinger holds: the bindings behind
// NAT it pings, and the last ones it removed for their silence.
type keepaliveView struct {
	Pinged  []keepalive.Status  `json:"pinged"`
	Removed []keepalive.Removal `json:"removed"`
}

func (o *operations) keepalives() keepaliveView {
	v := keepaliveView{Pinged: []keepalive.Status{}, Removed: []keepalive.Removal{}}
	if o.svc.Keepalive != nil {
		pinged, removed := o.svc.Keepalive.Flows()
		v.Pinged = append(v.Pinged, pinged...)
		v.Removed = append(v.Removed, removed...)
	}
	sort.Slice(v.Pinged, func(i, j int) bool {
		if v.Pinged[i].AOR != v.Pinged[j].AOR {
			return v.Pinged[i].AOR < v.Pinged[j].AOR
		}
		return v.Pinged[i].Contact < v.Pinged[j].Contact
	})
	return v
}

func (o *operations) stats() (metrics.Counts, error) {
	return o.svc.Metrics.Counts()
}

func (o *operations) reload(cause string) ctl.Outcome {
	return o.r.reload(cause)
}

// config describes the config in force, the file as it is now, and the
// overrides.
func (o *operations) config() ctl.Config {
	p := o.eng.Pipeline()
	v := ctl.Config{Path: p.Config.Path, Hash: p.Config.Hash, Stages: p.Stages(), Overrides: o.overrides()}
	if data, err := os.ReadFile(p.Config.Path); err == nil {
		sum := sha256.Sum256(data)
		v.FileHash = hex.EncodeToString(sum[:])
	}
	if last := o.r.Last(); !last.At.IsZero() {
		v.LastReload = &last
	}
	return v
}

// trace turns the live trace of user on or off.
func (o *operations) trace(user, state string) (ctl.Overrides, error) {
	if user == "" {
		return ctl.Overrides{}, fmt.Errorf("%w: no user", errInvalid)
	}
	if state != "on" && state != "off" {
		return ctl.Overrides{}, fmt.Errorf("%w: state %q is neither on nor off", errInvalid, state)
	}
	o.svc.Traces.Set(user, state == "on")
	o.r.log.Info("trace", "user", user, "state", state)
	return o.overrides(), nil
}

// logLevel overrides [log] level until the process stops; "config" puts
// the config's back.
func (o *operations) logLevel(level string) (ctl.Overrides, error) {
	if o.logs == nil {
		return ctl.Overrides{}, errors.New("this process has no log to set")
	}
	if level == "config" {
		level = ""
	} else if level == "" {
		return ctl.Overrides{}, fmt.Errorf("%w: no level", errInvalid)
	}
	if err := o.logs.SetLevel(level); err != nil {
		return ctl.Overrides{}, fmt.Errorf("%w: %v", errInvalid, err)
	}
	o.r.log.Info("log level", "override", level)
	return o.overrides(), nil
}

func (o *operations) overrides() ctl.Overrides {
	v := ctl.Overrides{Trace: o.svc.Traces.List()}
	if o.logs != nil {
		v.LogLevel = o.logs.Override()
	}
	return v
}
