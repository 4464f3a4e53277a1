// Package forward is the `forward` stage: it relays requests, statefully,
// to the targets the earlier stages chose.
package forward

import (
	"fmt"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "forward",
		Description: "relays the request to its targets (parallel forking), or by its Route set and Request-URI; terminal",
		New: func() pipeline.Stage {
			return &Forward{FrTimeout: config.Duration(30e9), InviteTimeout: config.Duration(180e9), FailoverTimeout: config.Duration(pipeline.DefaultFailoverTimeout)}
		},
	})
}

// Forward is the forward stage.
type Forward struct {
	// FrTimeout cancels a branch with no provisional response in this time.
	FrTimeout config.Duration `toml:"fr_timeout"`
	// InviteTimeout (Timer C) cancels an INVITE branch with no final
	// response this long after its last provisional.
	InviteTimeout config.Duration `toml:"invite_timeout"`
	// FailoverTimeout moves a branch to the next address of its next hop
	// (the SRV targets and addresses of a host name, RFC 3263) when the
	// current one sent no response at all in this time (fr_timeout when
	// that is shorter).
	FailoverTimeout config.Duration `toml:"failover_timeout"`
}

var (
	_ pipeline.RequestStage = (*Forward)(nil)
	_ pipeline.ReadOnly     = (*Forward)(nil)
	_ pipeline.Terminal     = (*Forward)(nil)
	_ pipeline.Validator    = (*Forward)(nil)
)

// Validate checks the timers.
func (f *Forward) Validate() error {
	if f.FrTimeout.D() < 1e9 {
		return fmt.Errorf("fr_timeout: %s is under 1s", f.FrTimeout)
	}
	if f.InviteTimeout.D() < 1e9 {
		return fmt.Errorf("invite_timeout: %s is under 1s", f.InviteTimeout)
	}
	if f.FailoverTimeout.D() < 100e6 {
		return fmt.Errorf("failover_timeout: %s is under 100ms", f.FailoverTimeout)
	}
	return nil
}

// ServeRequest hands the request to the engine's proxy core.
func (f *Forward) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ctx.Forward = pipeline.ForwardOptions{ProvisionalTimeout: f.FrTimeout.D(), InviteTimeout: f.InviteTimeout.D(), FailoverTimeout: f.FailoverTimeout.D()}
	return pipeline.Forwarded, nil
}

// Terminal reports that no request stage can follow forward.
func (f *Forward) Terminal() bool { return true }

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*Forward) ReadOnly() bool { return true }
