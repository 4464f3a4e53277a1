package pipeline

import (
	"net/netip"
	"slices"
)

// SetMember is a destination of a [[set]] as the rule field source.set
// sees it: a gateway, trunk or PBX that requests may come from.
type SetMember interface {
	// HasAddr reports whether ip is one of the addresses the destination
	// resolved to, up or down.
	HasAddr(ip netip.Addr) bool
}

// setMember is a destination and the set it belongs to.
type setMember struct {
	set    string
	index  int // the set's place in the file
	member SetMember
}

// AddSetMember makes m, a destination of the set called set, known to the
// rule field source.set. The dispatch stage adds the destinations of each
// set it sends to. m is compared with == (a pointer): a destination added
// twice counts once.
func (b *BuildContext) AddSetMember(set string, m SetMember) {
	p := b.Pipeline
	for _, x := range p.members {
		if x.set == set && x.member == m {
			return
		}
	}
	index := 0
	if s := p.Config.FindSet(set); s != nil {
		index = s.Index
	}
	p.members = append(p.members, setMember{set: set, index: index, member: m})
	slices.SortStableFunc(p.members, func(a, b setMember) int { return a.index - b.index })
}

// SourceSet returns the name of the set with a destination at ip, the
// first in the file when several have one, or "".
func (p *Pipeline) SourceSet(ip netip.Addr) string {
	if p == nil || !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	for _, x := range p.members {
		if x.member.HasAddr(ip) {
			return x.set
		}
	}
	return ""
}
