package certs

import (
	"fmt"
	"time"
)

// WarnBefore is how long before its expiry Check warns about a
// certificate: Let's Encrypt's certificates are renewed 30 days before.
const WarnBefore = 30 * 24 * time.Hour

// Check loads a pair as a listener would, and returns an error when the
// files are missing, do not parse, the key does not match the
// certificate, or it has expired at now; warning is set when it expires
// within WarnBefore.
func Check(p Pair, now time.Time) (warning string, err error) {
	c, _, err := load(p)
	if err != nil {
		return "", err
	}
	leaf := c.Leaf
	switch {
	case now.After(leaf.NotAfter):
		return "", fmt.Errorf("%s: expired on %s", p.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return "", fmt.Errorf("%s: not valid before %s", p.Cert, leaf.NotBefore.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < WarnBefore:
		return fmt.Sprintf("%s: expires in %d days, on %s", p.Cert, int(leaf.NotAfter.Sub(now).Hours()/24), leaf.NotAfter.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// CheckCA returns an error when the CA bundle is missing or holds no
// certificate.
func CheckCA(path string) error {
	_, _, err := loadCA(path)
	return err
}
