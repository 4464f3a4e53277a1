package auth

import (
	"errors"
	"fmt"
	"os"

	"github.com/switchboard-sip/switchboard/pipeline/ha1file"
)

// user is one user of the users file: its HA1 per algorithm column, ""
// where the algorithm is not offered to it.
type user struct {
	ha1 [2]string
}

// loadUsers reads the users of realm from a users file.
func loadUsers(path, realm string) (map[string]user, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseUsers(string(data), path, realm)
}

// parseUsers parses a users file: one user a line, written
//
//	user:realm:ha1-md5:ha1-sha256
//
// where either hash may be "-". Blank lines and lines starting with # are
// skipped, and so are users of other realms. Every mistake is returned,
// each as `name:line: ...`.
func parseUsers(data, name, realm string) (map[string]user, error) {
	entries, errs := ha1file.Parse(data, name)
	users := map[string]user{}
	seen := map[string]int{}
	for _, e := range entries {
		if e.Realm != realm {
			continue
		}
		if first, dup := seen[e.User]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q is already on line %d", name, e.Line, e.User, first))
			continue
		}
		seen[e.User] = e.Line
		var u user
		u.ha1[md5Digest.column], u.ha1[sha256Digest.column] = e.MD5, e.SHA256
		users[e.User] = u
	}
	if len(errs) == 0 && len(users) == 0 {
		errs = append(errs, fmt.Errorf("%s: no user in realm %q", name, realm))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return users, nil
}
