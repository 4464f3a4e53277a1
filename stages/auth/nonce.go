package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// Nonces are stateless: a nonce is its issue time, eight random bytes and
// an HMAC-SHA-256 of both (with the realm) under a secret, in base64url.
// Checking one needs no memory of having issued it, so that a flood of
// unauthenticated requests costs nothing to remember.
const (
	nonceTimeLen = 8
	nonceRandLen = 8
	nonceMACLen  = 16
	nonceLen     = nonceTimeLen + nonceRandLen + nonceMACLen
)

// nonceSkew is how far in the future a nonce's issue time may be (another
// proxy sharing nonce_secret, with its clock a little ahead).
const nonceSkew = 5 * time.Second

// maxNonceCounts is how many nonces the nonce-count table remembers; past
// it the nonce first used longest ago is forgotten.
const maxNonceCounts = 100000

// noncesKey is the key of the nonceState in pipeline.Services.Shared.
const noncesKey = "auth/nonces"

// nonceState is what the auth stages keep across reloads: the random
// secret of nonces (when nonce_secret is not set), and the last nonce count
// each nonce was used with.
type nonceState struct {
	secret []byte
	counts *nonceCounts
}

func newNonceState() *nonceState {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read does not fail
	return &nonceState{secret: secret, counts: newNonceCounts(maxNonceCounts)}
}

// nonceKey is a secret and a realm, to make and check nonces.
type nonceKey struct {
	secret []byte
	realm  string
}

// issue returns a new nonce issued at now.
func (k nonceKey) issue(now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceTimeLen], uint64(now.UnixNano()))
	_, _ = rand.Read(b[nonceTimeLen : nonceTimeLen+nonceRandLen])
	copy(b[nonceTimeLen+nonceRandLen:], k.mac(b[:nonceTimeLen+nonceRandLen]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceStatus is what checking a nonce found.
type nonceStatus int

const (
	nonceValid   nonceStatus = iota
	nonceExpired             // ours, but older than nonce_ttl (or from the future)
	nonceForeign             // not made with our secret and realm
)

// check says whether nonce is one of ours, issued less than ttl before now.
func (k nonceKey) check(nonce string, now time.Time, ttl time.Duration) nonceStatus {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceLen {
		return nonceForeign
	}
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return nonceForeign
	}
	if !hmac.Equal(b[nonceTimeLen+nonceRandLen:], k.mac(b[:nonceTimeLen+nonceRandLen])) {
		return nonceForeign
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:nonceTimeLen])))
	if age := now.Sub(issued); age >= ttl || age < -nonceSkew {
		return nonceExpired
	}
	return nonceValid
}

func (k nonceKey) mac(data []byte) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("switchboard auth nonce\x00"))
	m.Write([]byte(k.realm))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)[:nonceMACLen]
}

// nonceCounts remembers the last nonce count (nc) each nonce was used
// with, so that a request cannot be replayed: a nonce's count must grow.
// It holds at most max nonces and forgets the one first used longest ago
// (the nearest to expiring) to make room.
type nonceCounts struct {
	mu    sync.Mutex
	last  map[string]uint32
	order []string // a ring of the nonces in the order of their first use
	next  int
	max   int
}

func newNonceCounts(max int) *nonceCounts {
	return &nonceCounts{last: map[string]uint32{}, max: max}
}

// advance records nc for nonce and reports whether it is higher than every
// count the nonce was used with before. A nonce it does not remember
// accepts any count.
func (n *nonceCounts) advance(nonce string, nc uint32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if last, ok := n.last[nonce]; ok {
		if nc <= last {
			return false
		}
		n.last[nonce] = nc
		return true
	}
	if len(n.order) < n.max {
		n.order = append(n.order, nonce)
	} else {
		delete(n.last, n.order[n.next])
		n.order[n.next] = nonce
		n.next = (n.next + 1) % n.max
	}
	n.last[nonce] = nc
	return true
}

// Len returns how many nonces it remembers.
func (n *nonceCounts) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.last)
}
