// Package uac is the proxy acting as a user agent client towards a
// provider: it answers digest challenges (RFC 7616, RFC 2617) with the
// accounts of a credentials file, and keeps outbound registrations
// refreshed.
package uac

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Account is the proxy's account in one realm: its user name and HA1
// hashes (hex of H(user:realm:password)), "" where an algorithm is not
// offered.
type Account struct {
	User   string
	Realm  string
	MD5    string
	SHA256 string
}

// Accounts are the accounts of a credentials file, one per realm. They
// are safe for concurrent use: nothing changes them once loaded.
type Accounts struct {
	byRealm map[string]Account
}

// LoadAccounts reads a credentials file.
func LoadAccounts(path string) (*Accounts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseAccounts(string(data), path)
}

// ParseAccounts parses a credentials file, in the format of the auth
// stage's users file: one account a line,
//
//	user:realm:ha1-md5:ha1-sha256
//
// where either hash may be "-". Blank lines and lines starting with #
// are skipped. A realm has one account: the provider's challenge names
// the realm, and the proxy answers as that account. Every mistake is
// returned, each as `name:line: ...`.
func ParseAccounts(data, name string) (*Accounts, error) {
	a := &Accounts{byRealm: map[string]Account{}}
	lines := map[string]int{}
	var errs []error
	for i, line := range strings.Split(data, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 4 {
			errs = append(errs, fmt.Errorf("%s:%d: %d fields, want 4: user:realm:ha1-md5:ha1-sha256", name, n, len(f)))
			continue
		}
		acc := Account{User: f[0], Realm: f[1]}
		md5, err1 := ha1Column(f[2], 32)
		sha, err2 := ha1Column(f[3], 64)
		switch {
		case acc.User == "" || acc.Realm == "":
			errs = append(errs, fmt.Errorf("%s:%d: the user or the realm is empty", name, n))
			continue
		case err1 != nil:
			errs = append(errs, fmt.Errorf("%s:%d: the MD5 hash: %w", name, n, err1))
			continue
		case err2 != nil:
			errs = append(errs, fmt.Errorf("%s:%d: the SHA-256 hash: %w", name, n, err2))
			continue
		case md5 == "" && sha == "":
			errs = append(errs, fmt.Errorf("%s:%d: user %q has no hash: both are \"-\"", name, n, acc.User))
			continue
		}
		if first, dup := lines[acc.Realm]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: realm %q already has an account on line %d", name, n, acc.Realm, first))
			continue
		}
		acc.MD5, acc.SHA256 = md5, sha
		lines[acc.Realm] = n
		a.byRealm[acc.Realm] = acc
	}
	if len(errs) == 0 && len(a.byRealm) == 0 {
		errs = append(errs, fmt.Errorf("%s: no account", name))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// ha1Column checks one HA1 column: "-" for none, else n hex digits.
func ha1Column(s string, n int) (string, error) {
	s = strings.ToLower(s)
	if s == "-" {
		return "", nil
	}
	if _, err := hex.DecodeString(s); err != nil || len(s) != n {
		return "", fmt.Errorf("%q is not %d hex digits or \"-\"", s, n)
	}
	return s, nil
}

// Account returns the account of a realm.
func (a *Accounts) Account(realm string) (Account, bool) {
	if a == nil {
		return Account{}, false
	}
	acc, ok := a.byRealm[realm]
	return acc, ok
}
