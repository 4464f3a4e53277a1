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
	var token [dialogTokenLen]byte
	dialogToken(key, callID, tag, &token)
	return string(token[:])
}

// dialogTokenLen is the length of a token: 12 bytes of the MAC in
// unpadded base64.
const dialogTokenLen = 16

// dialogToken writes the token of DialogToken to token, without
// allocating: it runs for every message the proxy record-routes and every
// in-dialog request it checks.
func dialogToken(key []byte, callID, tag string, token *[dialogTokenLen]byte) {
	m, _ := dialogMACs.Get().(*dialogMAC)
	if m == nil || !bytes.Equal(m.key, key) {
		m = &dialogMAC{key: bytes.Clone(key), h: hmac.New(sha256.New, key)}
	} else {
		m.h.Reset()
	}
	m.in = append(append(append(m.in[:0], callID...), 0), tag...)
	m.h.Write(m.in)
	base64.RawURLEncoding.Encode(token[:], m.h.Sum(m.sum[:0])[:12])
	dialogMACs.Put(m)
}

// dialogMAC is an HMAC of a key, kept for the next DialogToken: a new one
// costs two SHA-256 states and the key's pads, per message. in and sum are
// its input and output, kept with it.
type dialogMAC struct {
	key []byte
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
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
	var want [dialogTokenLen]byte
	for _, tag := range tags(req) {
		if tag == "" {
			continue
		}
		dialogToken(key, id.Value(), tag, &want)
		if hmac.Equal([]byte(token), want[:]) {
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
