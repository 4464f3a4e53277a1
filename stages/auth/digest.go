package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
)

// algorithm is a digest algorithm (RFC 7616 3.3, RFC 8760).
type algorithm struct {
	// name is as written in challenges and credentials.
	name string
	// column is the algorithm's column among the users file's hashes.
	column int
	// hexLen is the length of its hashes in hex.
	hexLen int
	new    func() hash.Hash
}

var (
	md5Digest    = &algorithm{name: "MD5", column: 0, hexLen: 32, new: md5.New}
	sha256Digest = &algorithm{name: "SHA-256", column: 1, hexLen: 64, new: sha256.New}
)

// preference lists the algorithms most preferred first: the order of the
// challenges (RFC 7616 3.7, RFC 8760 2.4).
var preference = []*algorithm{sha256Digest, md5Digest}

// lookupAlgorithm returns the algorithm of a name, in any case. The -sess
// variants are not supported.
func lookupAlgorithm(name string) (*algorithm, bool) {
	for _, a := range preference {
		if strings.EqualFold(a.name, name) {
			return a, true
		}
	}
	return nil, false
}

// sum returns the hash of parts joined with colons, in lower-case hex.
func (a *algorithm) sum(parts ...string) string {
	h := a.new()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// response returns the request-digest of RFC 7616 3.4.1 for qop=auth:
// H(HA1:nonce:nc:cnonce:qop:H(method:uri)).
func (a *algorithm) response(ha1, nonce, nc, cnonce, qop, method, uri string) string {
	return a.sum(ha1, nonce, nc, cnonce, qop, a.sum(method, uri))
}
