// Package ha1file reads files of digest credentials, one entry a line:
//
//	user:realm:ha1-md5:ha1-sha256
//
// where either hash may be "-" (that algorithm is not offered). The auth
// stage's users file and a trunk's credentials file are both written so.
package ha1file

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// None marks an algorithm not offered in a hash column.
const None = "-"

// Entry is one well-formed line of the file.
type Entry struct {
	// Line is its line number, from 1.
	Line int
	User string
	// Realm may be empty; the reader decides what that means.
	Realm string
	// MD5 and SHA256 are the HA1 hashes in lower-case hex, "" where the
	// column is "-". One of them at least is set.
	MD5, SHA256 string
}

// Parse returns the well-formed entries of data, in order, and one mistake
// for each other line, as `name:line: ...`. Blank lines and lines starting
// with # are skipped.
func Parse(data, name string) ([]Entry, []error) {
	var entries []Entry
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
		e := Entry{Line: n, User: f[0], Realm: f[1]}
		if e.User == "" {
			errs = append(errs, fmt.Errorf("%s:%d: the user name is empty", name, n))
			continue
		}
		md5, err1 := column(f[2], "MD5", 32)
		sha, err2 := column(f[3], "SHA-256", 64)
		switch {
		case err1 != nil:
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %w", name, n, e.User, err1))
			continue
		case err2 != nil:
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %w", name, n, e.User, err2))
			continue
		case md5 == "" && sha == "":
			errs = append(errs, fmt.Errorf("%s:%d: user %q has no hash: both are %q", name, n, e.User, None))
			continue
		}
		e.MD5, e.SHA256 = md5, sha
		entries = append(entries, e)
	}
	return entries, errs
}

// column checks one hash column: "-" for none, else digits hex digits.
func column(s, algorithm string, digits int) (string, error) {
	s = strings.ToLower(s)
	if s == None {
		return "", nil
	}
	if _, err := hex.DecodeString(s); err != nil || len(s) != digits {
		return "", fmt.Errorf("the %s hash %q is not %d hex digits or %q", algorithm, s, digits, None)
	}
	return s, nil
}
