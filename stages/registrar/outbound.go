package registrar

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// outboundTag is the option tag of SIP outbound (RFC 5626).
const outboundTag = "outbound"

// firstHop reports whether req came straight from the phone: one Via and
// no Path. Only then did the phone's flow end at this proxy, which is its
// edge proxy (RFC 5626 section 5).
func firstHop(req *sip.Request) bool {
	return len(req.GetHeaders("Via")) == 1 && len(req.GetHeaders("Path")) == 0
}

// outboundEdge reports whether the flows of req's contacts are kept by an
// edge proxy that does outbound: this one (req came straight from the
// phone), or the one whose Path entry, the first, carries the ob
// parameter (RFC 5626 section 6).
func outboundEdge(req *sip.Request, path []string) bool {
	if firstHop(req) {
		return true
	}
	if len(path) == 0 {
		return false
	}
	var u sip.Uri
	if _, err := sip.ParseAddressValue(path[0], &u, nil); err != nil {
		return false
	}
	return u.UriParams.Has("ob")
}

// validRegID reports whether v is a reg-id: 1 to 2^31-1 (RFC 5626
// section 12).
func validRegID(v string) bool {
	if v == "" || len(v) > 10 || strings.Trim(v, "0123456789") != "" || strings.TrimLeft(v, "0") == "" {
		return false
	}
	n := 0
	for _, c := range v {
		n = n*10 + int(c-'0')
	}
	return n <= 1<<31-1
}

// outbound reports whether reg binds or removes a flow (a contact with
// +sip.instance and reg-id that the registrar kept): its 200 then says
// Require: outbound, without which the phone turns outbound off (RFC 5626
// section 6).
func (reg *registration) outbound() bool {
	for _, c := range reg.contacts {
		if c.regID != "" {
			return true
		}
	}
	return false
}
