package app

import (
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/destinations"
)

// destinations lists the destinations of the sets in use and their health.
func (o *operations) destinations() []destinations.State {
	out := []destinations.State{}
	for _, d := range destinations.All(&o.svc.Shared) {
		out = append(out, d.State())
	}
	return out
}

// drain stops (on) or resumes sending new requests to the destination uri,
// in every set or in set only; the requests in progress go on. It returns
// the destinations it changed.
func (o *operations) drain(uri, set string, on bool) ([]destinations.State, error) {
	if uri == "" {
		return nil, fmt.Errorf("%w: no uri", errInvalid)
	}
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return nil, fmt.Errorf("%w: uri: %v", errInvalid, err)
	}
	changed := []destinations.State{}
	for _, d := range destinations.All(&o.svc.Shared) {
		if d.URI.String() != u.String() || set != "" && d.Set != set {
			continue
		}
		d.Drain(on)
		changed = append(changed, d.State())
	}
	if len(changed) == 0 {
		return nil, fmt.Errorf("%w: no destination %s in the sets in use", errNotFound, uri)
	}
	return changed, nil
}
