package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/emiago/sipgo/sip"
)

// DialogParam is the Record-Route URI parameter in which the proxy signs
// the dialogs it records itself on. An in-dialog request is relayed only
// when the Route of ours it carries has a valid signature for its Call-ID
// and one of its tags: a Route to us copied into a forged request does not
// make the proxy a relay.
const DialogParam = "sbd"

// DialogToken signs a dialog: the Call-ID and the caller's tag (the From
// tag of the initial request; in later requests it is the From or the To
// tag, by direction).
func DialogToken(key []byte, callID, tag string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(callID))
	m.Write([]byte{0})
	m.Write([]byte(tag))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// DialogSigned reports whether token signs the dialog of req, in either
// direction.
func DialogSigned(key []byte, req *sip.Request, token string) bool {
	if token == "" {
		return false
	}
	id := req.CallID()
	if id == nil {
		return false
	}
	for _, tag := range tags(req) {
		if tag != "" && hmac.Equal([]byte(token), []byte(DialogToken(key, id.Value(), tag))) {
			return true
		}
	}
	return false
}

func tags(req *sip.Request) [2]string {
	var out [2]string
	if f := req.From(); f != nil {
		out[0], _ = f.Params.Get("tag")
	}
	if t := req.To(); t != nil {
		out[1], _ = t.Params.Get("tag")
	}
	return out
}
