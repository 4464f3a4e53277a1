// Package trunk is the `trunk` stage: it sends calls to a SIP trunk (a
// provider), answers the trunk's digest challenges with the proxy's own
// credentials, and keeps the proxy registered to it.
package trunk

import (
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/destinations"
	"github.com/switchboard-sip/switchboard/pipeline/uac"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "trunk",
		Description: "sends requests to a SIP trunk, answers its 401/407 with credentials, and registers to it",
		New: func() pipeline.Stage {
			return &Trunk{RegisterExpires: config.Duration(10 * time.Minute), RegisterRetry: config.Duration(30 * time.Second)}
		},
	})
}

// Trunk is the trunk stage.
type Trunk struct {
	// URI is where requests go: the Request-URI's host, port and
	// parameters become the URI's (a DNS name is resolved by RFC 3263),
	// its user stays unless the URI names one.
	URI string `toml:"uri"`
	// Credentials is the file of the proxy's accounts at the trunk
	// (user:realm:ha1-md5:ha1-sha256), "" for none.
	Credentials string `toml:"credentials"`
	// Name, when set, makes the trunk known to the rule field source.set:
	// a request from one of the URI's addresses has source.set == Name.
	// Empty, the trunk is not known to source.set.
	Name string `toml:"name"`
	// RegisterAOR, when set, registers the proxy to the trunk as this
	// address-of-record; Registrar is the REGISTER's Request-URI (the
	// URI's host without one), RegisterContact its Contact (the AOR's user
	// at the proxy's advertised UDP address without one).
	RegisterAOR     string          `toml:"register_aor"`
	Registrar       string          `toml:"registrar"`
	RegisterContact string          `toml:"register_contact"`
	RegisterExpires config.Duration `toml:"register_expires"`
	RegisterRetry   config.Duration `toml:"register_retry"`

	uri      sip.Uri
	accounts *uac.Accounts
}

var (
	_ pipeline.RequestStage = (*Trunk)(nil)
	_ pipeline.Provisioner  = (*Trunk)(nil)
	_ pipeline.Validator    = (*Trunk)(nil)
)

// Validate checks the URIs and timers.
func (s *Trunk) Validate() error {
	var errs []error
	if s.URI == "" {
		errs = append(errs, errors.New(`uri: empty: name the trunk (uri = "sip:sip.provider.example")`))
	} else if u, err := parseURI(s.URI); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("uri: %q is not a SIP URI with a host", s.URI))
	}
	if s.RegisterAOR == "" {
		if s.Registrar != "" || s.RegisterContact != "" {
			errs = append(errs, errors.New("register_aor: empty, but registrar or register_contact is set: name the AOR to register"))
		}
		return errors.Join(errs...)
	}
	for _, key := range []string{"register_aor", "registrar", "register_contact"} {
		v := map[string]string{"register_aor": s.RegisterAOR, "registrar": s.Registrar, "register_contact": s.RegisterContact}[key]
		if u, err := parseURI(v); v != "" && (err != nil || u.Host == "") {
			errs = append(errs, fmt.Errorf("%s: %q is not a SIP URI with a host", key, v))
		}
	}
	if s.RegisterExpires.D() < 10*time.Second {
		errs = append(errs, fmt.Errorf("register_expires: %s is under 10s", s.RegisterExpires))
	}
	if s.RegisterRetry.D() < time.Second {
		errs = append(errs, fmt.Errorf("register_retry: %s is under 1s", s.RegisterRetry))
	}
	return errors.Join(errs...)
}

// Provision reads the credentials file (and watches it) and starts, or
// keeps across a reload, the outbound registration.
func (s *Trunk) Provision(b *pipeline.BuildContext) error {
	s.uri, _ = parseURI(s.URI)
	if s.Credentials != "" {
		path := b.Path(s.Credentials)
		b.Watch(path)
		a, err := uac.LoadAccounts(path)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		s.accounts = a
	}
	if s.Name != "" {
		if err := s.provisionSource(b); err != nil {
			return err
		}
	}
	// Without a Sender the pipeline runs in no proxy (validate, tests).
	if s.RegisterAOR == "" || b.Services.Checking || b.Services.Sender == nil {
		return nil
	}
	set := s.registration(b.Pipeline)
	reg, err := pipeline.Share(b, "trunk/register/"+set.Key(), func() (*uac.Registration, error) {
		return uac.NewRegistration(b.Services.Sender, b.Log, set), nil
	})
	if err != nil {
		return err
	}
	reg.Configure(set)
	return nil
}

// sourceResolve is how often the trunk's name is resolved again for
// source.set; the resolver's cache keeps an answer for its TTL.
const sourceResolve = 30 * time.Second

// provisionSource makes the trunk known to source.set under its name: a
// destination for its URI, shared so that a reload keeps the addresses it
// resolved, with no health checks, whose name is resolved in the
// background (an address in the URI needs none).
func (s *Trunk) provisionSource(b *pipeline.BuildContext) error {
	out := b.Services.Outbound
	if b.Services.Checking {
		out = nil
	}
	check := destinations.Check{Resolve: sourceResolve}
	dest, err := pipeline.Share(b, "trunk/source|"+s.Name+"|"+s.URI, func() (*destinations.Destination, error) {
		d := destinations.New(s.Name, s.uri, out, b.Services.Now, b.Services.Log.With("layer", "destinations"))
		d.Configure(0, 0, check)
		d.Start()
		return d, nil
	})
	if err != nil {
		return err
	}
	b.AddSetMember(s.Name, dest)
	return nil
}

// registration is the stage's outbound registration, with its defaults
// filled in.
func (s *Trunk) registration(p *pipeline.Pipeline) uac.RegisterSettings {
	set := uac.RegisterSettings{Expires: s.RegisterExpires.D(), Retry: s.RegisterRetry.D()}
	_ = sip.ParseUri(s.RegisterAOR, &set.AOR)
	set.Registrar = sip.Uri{Scheme: s.uri.Scheme, Host: s.uri.Host, Port: s.uri.Port, UriParams: s.uri.UriParams.Clone()}
	if s.Registrar != "" {
		_ = sip.ParseUri(s.Registrar, &set.Registrar)
	}
	if s.RegisterContact != "" {
		_ = sip.ParseUri(s.RegisterContact, &set.Contact)
	} else {
		host, port := p.Advertised("UDP")
		set.Contact = sip.Uri{Scheme: "sip", User: set.AOR.User, Host: host, Port: port}
	}
	if s.accounts != nil {
		set.Credentials = s.accounts
	}
	return set
}

// ServeRequest sends a request that opens a dialog or stands alone to the
// trunk, with the credentials for its challenges. An in-dialog request
// goes on unchanged: it follows its dialog's route.
func (s *Trunk) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if pipeline.ToTag(ctx.Request) != "" {
		return pipeline.Continue, nil
	}
	u := *s.uri.Clone()
	if u.User == "" {
		u.User = ctx.Request.Recipient.User
	}
	target := pipeline.Target{URI: u}
	if s.accounts != nil {
		target.Credentials = s.accounts
	}
	ctx.Targets = []pipeline.Target{target}
	return pipeline.Continue, nil
}

func parseURI(s string) (sip.Uri, error) {
	var u sip.Uri
	err := sip.ParseUri(s, &u)
	return u, err
}
