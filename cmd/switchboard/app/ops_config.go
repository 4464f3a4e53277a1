package app

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/console"
	"github.com/switchboard-sip/switchboard/config"
)

func fileHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// configFile returns the config file's path, its bytes and their hash.
func (o *operations) configFile() (path string, data []byte, err error) {
	path = o.r.path
	data, err = os.ReadFile(path)
	return path, data, err
}

// validateText checks text as `switchboard validate` checks a file at the
// config's path, and returns its mistakes as validate prints them, with
// their lines and columns.
func (o *operations) validateText(text string) []console.ConfigError {
	path := o.r.path
	file, err := config.Parse(path, []byte(text))
	var ls []string
	if file == nil {
		ls = lines(err)
	} else if _, err := checkAll(file, err); err != nil {
		ls = lines(err)
	} else {
		ls = checkCerts(file.TLS, path, time.Now(), io.Discard)
	}
	out := []console.ConfigError{}
	for _, l := range ls {
		out = append(out, configError(path, l))
	}
	return out
}

// configError splits "path:line:column: message" into its parts.
func configError(path, line string) console.ConfigError {
	rest, ok := strings.CutPrefix(line, path+":")
	if !ok {
		return console.ConfigError{Message: strings.TrimPrefix(line, path+": ")}
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) == 3 {
		l, err1 := strconv.Atoi(parts[0])
		c, err2 := strconv.Atoi(parts[1])
		if err1 == nil && err2 == nil {
			return console.ConfigError{Line: l, Column: c, Message: strings.TrimSpace(parts[2])}
		}
	}
	return console.ConfigError{Message: strings.TrimSpace(rest)}
}

// readOnly says why the config file cannot be replaced, or "".
func readOnly(path string) string {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err.Error()
	}
	if err := syscall.Access(filepath.Dir(target), 2 /* W_OK */); err != nil {
		return fmt.Sprintf("the folder %s is not writable (%v): under the shipped systemd unit, add it to ReadWritePaths", filepath.Dir(target), err)
	}
	return ""
}

// saveConfig writes text in place of the config file, if it validates and
// the file's hash is still hash, then reloads it for session. The file is
// replaced atomically (a temporary file in the same folder, renamed),
// keeping its mode and owner; a symlink is followed to its target.
func (o *operations) saveConfig(text, hash, session string) (console.SaveResult, error) {
	path, data, err := o.configFile()
	if err != nil {
		return console.SaveResult{}, err
	}
	if fileHash(data) != hash {
		return console.SaveResult{}, console.ErrChanged
	}
	if errs := o.validateText(text); len(errs) > 0 {
		return console.SaveResult{Errors: errs}, console.ErrInvalid
	}
	if why := readOnly(path); why != "" {
		return console.SaveResult{}, fmt.Errorf("%w: %s", console.ErrReadOnly, why)
	}
	if err := writeAtomic(path, []byte(text)); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return console.SaveResult{}, fmt.Errorf("%w: %v", console.ErrReadOnly, err)
		}
		return console.SaveResult{}, err
	}
	o.r.log.Info("config saved", "session", session, "path", path, "hash", short(fileHash([]byte(text))))
	out := o.r.reloadBy("console save", session)
	res := console.SaveResult{Saved: true, Outcome: out.Result, NeedsRestart: out.NeedsRestart}
	for _, l := range out.Errors {
		res.Errors = append(res.Errors, configError(path, l))
	}
	return res, nil
}

// writeAtomic replaces the file at path (its target, if a symlink) with
// data, keeping its mode and owner.
func writeAtomic(path string, data []byte) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	info, err := os.Stat(target)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		_ = tmp.Close()
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid()) {
		if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
			_ = tmp.Close()
			return fmt.Errorf("keeping the owner of %s: %w", target, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}

// configDiff compares the config in force with the file.
func (o *operations) configDiff() console.Diff {
	running, hash := o.r.running()
	_, data, _ := o.configFile()
	d := console.Diff{RunningHash: hash, FileHash: fileHash(data)}
	if d.FileHash != d.RunningHash {
		d.Diff = lineDiff(masked(running), masked(data))
	}
	return d
}

// masked returns a config's text with its token masked (see maskToken).
func masked(text []byte) string {
	m, _ := maskToken(string(text))
	return m
}

// lineDiff returns the lines of a and b as a diff: " " for a line in
// both, "-" for one of a only, "+" for one of b only (the longest common
// subsequence of lines).
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(x)*len(y) > 4_000_000 {
		return "(too large to compare)"
	}
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	sb.WriteString("--- running\n+++ file\n")
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			sb.WriteString(" " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("-" + x[i] + "\n")
			i++
		default:
			sb.WriteString("+" + y[j] + "\n")
			j++
		}
	}
	return sb.String()
}
