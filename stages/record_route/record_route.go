// Package recordroute is the `record_route` stage: it keeps the proxy on
// the path of the dialogs it sets up.
package recordroute

import (
	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "record_route",
		Description: "adds Record-Route (lr, transport; doubled when the transport changes) to initial INVITE, SUBSCRIBE, REFER and NOTIFY",
		New:         func() pipeline.Stage { return new(RecordRoute) },
	})
}

// RecordRoute is the record_route stage. The engine writes the header on
// each branch, since the branch's transport decides whether it is doubled;
// its host is server.advertise, or the listen address.
type RecordRoute struct{}

var (
	_ pipeline.RequestStage = (*RecordRoute)(nil)
	_ pipeline.ReadOnly     = (*RecordRoute)(nil)
)

// ServeRequest asks for Record-Route on the request's branches.
func (r *RecordRoute) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ctx.RecordRoute = true
	return pipeline.Continue, nil
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*RecordRoute) ReadOnly() bool { return true }
