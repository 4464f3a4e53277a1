package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// checkTimeout bounds a check of a bolt file in its child process: a
// damaged file can send bbolt round a loop of pages.
const checkTimeout = 5 * time.Minute

// checkMaxStack bounds the child's goroutine stacks, so that a loop of
// pages that bbolt follows by recursion ends the child quickly rather than
// at Go's default of 1 GB.
const checkMaxStack = 64 << 20

// storeCommand runs `switchboard store check FILE`: it checks the bolt
// file in a child process and prints what it holds (exit 0) or what is
// wrong with it (exit 1).
func storeCommand(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("store check")
	child := fs.Bool("child", false, "check in this process and print the summary as JSON (what the proxy runs in its child process)")
	if len(args) == 0 || args[0] != "check" {
		return usageError(stderr, "store", "the only store command is check FILE")
	}
	pos, code, ok := parseFlags(fs, args[1:], 1, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "store check", "which file? store check FILE")
	}
	path := pos[0]
	if *child {
		debug.SetMaxStack(checkMaxStack)
		sum, err := location.CheckBolt(path)
		if errors.Is(err, location.ErrLocked) {
			fmt.Fprintln(stderr, err)
			return childLocked
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		_ = json.NewEncoder(stdout).Encode(sum)
		return 0
	}
	sum, err := checkStore(path)
	if errors.Is(err, errNotChecked) {
		fmt.Fprintf(stderr, "%s: not checked: %v\n", path, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: damaged: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: %d AORs, %d bindings, %d AORs remembered without bindings\n", path, sum.AORs, sum.Bindings, sum.Remembered)
	return 0
}

// childLocked is the child's exit code for a file another process holds.
const childLocked = 3

// errNotChecked wraps what kept checkStore from checking a file (it is
// locked, the check could not run or did not end): nothing is known of
// the file, so nothing says to restore a copy over it.
var errNotChecked = errors.New("not checked")

// checkStore checks the bolt file at path with location.CheckBolt in a
// child process (this binary, `store check -child`): bbolt can fault or
// panic on a damaged file in a goroutine of its own, where no recover
// reaches, and the crash must end the child, not the proxy.
func checkStore(path string) (location.Summary, error) {
	var sum location.Summary
	exe, err := os.Executable()
	if err != nil {
		return sum, fmt.Errorf("%w: cannot run the check: %w", errNotChecked, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "store", "check", "-child", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return sum, fmt.Errorf("%w: the check did not end within %v", errNotChecked, checkTimeout)
	case errors.As(err, &exit) && exit.ExitCode() == childLocked:
		return sum, fmt.Errorf("%w: %s", errNotChecked, strings.TrimSpace(stderr.String()))
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return sum, errors.New(strings.TrimSpace(stderr.String()))
	case err != nil:
		return sum, fmt.Errorf("reading it crashed the check (%v): %s", err, firstLine(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		return sum, fmt.Errorf("the check said %q: %w", stdout.String(), err)
	}
	return sum, nil
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
