package auth

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// noHash marks an algorithm not offered to a user in the users file.
const noHash = "-"

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
	users := map[string]user{}
	seen := map[string]int{}
	var errs []error
	for i, line := range strings.Split(data, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != 4 {
			errs = append(errs, fmt.Errorf("%s:%d: %d fields, want 4: user:realm:ha1-md5:ha1-sha256", name, n, len(fields)))
			continue
		}
		username, userRealm := fields[0], fields[1]
		if username == "" {
			errs = append(errs, fmt.Errorf("%s:%d: the user name is empty", name, n))
			continue
		}
		var u user
		bad := false
		for _, a := range []*algorithm{md5Digest, sha256Digest} {
			h := strings.ToLower(fields[2+a.column])
			if h == noHash {
				continue
			}
			if _, err := hex.DecodeString(h); err != nil || len(h) != a.hexLen {
				errs = append(errs, fmt.Errorf("%s:%d: user %q: the %s hash %q is not %d hex digits or %q", name, n, username, a.name, fields[2+a.column], a.hexLen, noHash))
				bad = true
				continue
			}
			u.ha1[a.column] = h
		}
		if bad || userRealm != realm {
			continue
		}
		if u.ha1 == ([2]string{}) {
			errs = append(errs, fmt.Errorf("%s:%d: user %q has no hash: both are %q", name, n, username, noHash))
			continue
		}
		if first, dup := seen[username]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q is already on line %d", name, n, username, first))
			continue
		}
		seen[username] = n
		users[username] = u
	}
	if len(errs) == 0 && len(users) == 0 {
		errs = append(errs, fmt.Errorf("%s: no user in realm %q", name, realm))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return users, nil
}
