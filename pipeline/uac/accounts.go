// Package uac is the proxy acting as a user agent client towards a
// provider: it answers digest challenges (RFC 7616, RFC 2617) with the
// accounts of a credentials file, and keeps outbound registrations
// refreshed.
package uac

import (
	"errors"
	"fmt"
	"os"

	"github.com/switchboard-sip/switchboard/pipeline/ha1file"
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
	entries, errs := ha1file.Parse(data, name)
	a := &Accounts{byRealm: map[string]Account{}}
	lines := map[string]int{}
	for _, e := range entries {
		if e.Realm == "" {
			errs = append(errs, fmt.Errorf("%s:%d: the realm is empty", name, e.Line))
			continue
		}
		if first, dup := lines[e.Realm]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: realm %q already has an account on line %d", name, e.Line, e.Realm, first))
			continue
		}
		lines[e.Realm] = e.Line
		a.byRealm[e.Realm] = Account{User: e.User, Realm: e.Realm, MD5: e.MD5, SHA256: e.SHA256}
	}
	if len(errs) == 0 && len(a.byRealm) == 0 {
		errs = append(errs, fmt.Errorf("%s: no account", name))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// Account returns the account of a realm.
func (a *Accounts) Account(realm string) (Account, bool) {
	if a == nil {
		return Account{}, false
	}
	acc, ok := a.byRealm[realm]
	return acc, ok
}
