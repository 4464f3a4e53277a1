package pipeline

import (
	"crypto/hmac"
	"encoding/base64"
	"net/netip"
	"strings"
)

// FlowParam is the Record-Route URI parameter that names the connections
// (flows) of a dialog's ends: a phone on TCP, TLS or WebSocket is reached
// only over the connection it opened, and a browser's Contact names a
// .invalid host, so only the proxy's own Route can say which connection an
// in-dialog request goes over. Each token is signed for the dialog's
// Call-ID with the key of DialogToken, which outlives a reload.
const FlowParam = "sbf"

// Flow is a stream connection, as sipgo's pool keys it: its transport and
// the remote address.
type Flow struct {
	Transport string // "TCP", "TLS", "WS" or "WSS"
	Addr      netip.AddrPort
}

// flowSep joins several tokens in one FlowParam: a Record-Route that faces
// both ends (they share a transport) names both their connections.
const flowSep = "~"

// FlowToken writes flows as a FlowParam value signed for callID.
func FlowToken(key []byte, callID string, flows ...Flow) string {
	tokens := make([]string, 0, len(flows))
	for _, f := range flows {
		name := strings.ToUpper(f.Transport) + "/" + f.Addr.String()
		tokens = append(tokens, base64.RawURLEncoding.EncodeToString([]byte(name))+"."+DialogToken(key, callID, "\x00flow\x00"+name))
	}
	return strings.Join(tokens, flowSep)
}

// ParseFlowToken reads the flows a FlowParam value names, skipping those
// whose signature for callID does not hold.
func ParseFlowToken(key []byte, callID, value string) []Flow {
	var flows []Flow
	var want [dialogTokenLen]byte
	for token := range strings.SplitSeq(value, flowSep) {
		enc, mac, ok := strings.Cut(token, ".")
		if !ok {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		name := string(raw)
		dialogToken(key, callID, "\x00flow\x00"+name, &want)
		if !hmac.Equal([]byte(mac), want[:]) {
			continue
		}
		transport, addr, ok := strings.Cut(name, "/")
		ap, err := netip.ParseAddrPort(addr)
		if !ok || err != nil || transport == "" {
			continue
		}
		flows = append(flows, Flow{Transport: transport, Addr: ap})
	}
	return flows
}
