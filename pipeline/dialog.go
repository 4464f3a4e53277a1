package pipeline

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

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
	m, _ := dialogMACs.Get().(*dialogMAC)
	if m == nil || !bytes.Equal(m.key, key) {
		m = &dialogMAC{key: bytes.Clone(key), h: hmac.New(sha256.New, key)}
	} else {
		m.h.Reset()
	}
	m.h.Write([]byte(callID))
	m.h.Write([]byte{0})
	m.h.Write([]byte(tag))
	var sum [sha256.Size]byte
	token := base64.RawURLEncoding.EncodeToString(m.h.Sum(sum[:0])[:12])
	dialogMACs.Put(m)
	return token
}

// dialogMAC is an HMAC of a key, kept for the next DialogToken: a new one
// costs two SHA-256 states and the key's pads, per message.
type dialogMAC struct {
	key []byte
	h   hash.Hash
}

var dialogMACs sync.Pool

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
	return [2]string{FromTag(req), ToTag(req)}
}

// FromTag returns the tag of a message's From header, "" for none.
func FromTag(m sip.Message) string {
	if f := m.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		return tag
	}
	return ""
}

// ToTag returns the tag of a message's To header, "" for none.
func ToTag(m sip.Message) string {
	if t := m.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		return tag
	}
	return ""
}
