package location

import (
	"slices"

	loc "github.com/switchboard-sip/switchboard/pipeline/location"
)

// newestFlowsFirst orders the RFC 5626 flows of each instance (bindings
// with a reg-id) by when they were registered, the newest first, each
// group in the places its flows held; other bindings keep their place.
// The engine sends to the first flow of an instance that is up, so a
// phone is reached over the flow it registered last, and over an older
// one when that one's connection is gone.
func newestFlowsFirst(bs []loc.Binding) []loc.Binding {
	groups := map[string][]int{}
	for i, b := range bs {
		if b.RegID() != "" {
			groups[b.Instance] = append(groups[b.Instance], i)
		}
	}
	out := slices.Clone(bs)
	for _, places := range groups {
		if len(places) < 2 {
			continue
		}
		flows := make([]loc.Binding, len(places))
		for j, i := range places {
			flows[j] = bs[i]
		}
		slices.SortStableFunc(flows, func(a, b loc.Binding) int { return b.Updated.Compare(a.Updated) })
		for j, i := range places {
			out[i] = flows[j]
		}
	}
	return out
}
