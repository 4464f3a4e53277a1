package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// control is the control socket that `switchboard ctl` speaks to: a unix
// socket of mode 0600, so that only the proxy's user (and root) may use
// it; no token.
type control struct {
	path string
	srv  *http.Server
}

// maxSocketPath is the longest path a unix socket may have on Linux
// (sun_path is 108 bytes, with its NUL).
const maxSocketPath = 107

// startControl listens on path, replacing a socket left by a proxy that
// died, and serves ops until stop is called.
func startControl(path string, ops *operations, log *slog.Logger) (*control, error) {
	ln, err := listenControl(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	c := &control{path: path, srv: &http.Server{Handler: adminHandler(ops, "ctl"), ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket stopped", "path", path, "error", err)
		}
	}()
	log.Info("control socket", "path", path)
	return c, nil
}

// listenControl listens on path with mode 0600. A socket already there
// that no process answers on is stale and is removed; one that answers
// belongs to a running proxy, and any other file is left alone.
func listenControl(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("the path is longer than %d bytes", maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, errors.New("a file that is not a socket is in the way")
		}
		if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = conn.Close()
			return nil, errors.New("another switchboard answers on it")
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket: %w", err)
		}
	}
	// The socket is made in a folder of mode 0700 of its own, made 0600,
	// then moved into place: no moment exists when another user could
	// connect, and the process's umask, which other goroutines' files
	// follow, is left alone.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".ctl")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	made := filepath.Join(tmp, "s")
	if len(made) > maxSocketPath {
		return nil, fmt.Errorf("the path of its temporary folder %s is longer than %d bytes", made, maxSocketPath)
	}
	ln, err := net.Listen("unix", made)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(made, 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if err := os.Rename(made, path); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return &placedListener{Listener: ln, path: path}, nil
}

// placedListener is the control socket's listener, which removes the
// socket's file when closed: the listener itself would remove the name it
// was made under.
type placedListener struct {
	net.Listener
	path string
}

func (l *placedListener) Close() error {
	err := l.Listener.Close()
	_ = os.Remove(l.path)
	return err
}

// stop closes the socket, which removes its file.
func (c *control) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.srv.Shutdown(ctx)
}
