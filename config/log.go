package config

import (
	"errors"
	"fmt"
)

// The sockets syslog and journald output write to by default.
const (
	DefaultSyslogSocket   = "/dev/log"
	DefaultJournaldSocket = "/run/systemd/journal/socket"
)

func (l *Log) defaults() {
	if l.Output == "" {
		l.Output = "stderr"
	}
	if l.Socket == "" {
		switch l.Output {
		case "syslog":
			l.Socket = DefaultSyslogSocket
		case "journald":
			l.Socket = DefaultJournaldSocket
		}
	}
}

// validateOutput checks output, file and socket, one error per mistake.
func (l *Log) validateOutput() []error {
	var errs []error
	switch l.Output {
	case "stderr", "syslog", "journald":
		if l.File != "" {
			errs = append(errs, fmt.Errorf("file: set, but output is %q, not \"file\"", l.Output))
		}
	case "file":
		if l.File == "" {
			errs = append(errs, errors.New("file: needed with output = \"file\""))
		}
	default:
		errs = append(errs, fmt.Errorf("output: %q is not one of stderr, file, syslog, journald", l.Output))
	}
	if l.Socket != "" && l.Output != "syslog" && l.Output != "journald" {
		errs = append(errs, fmt.Errorf("socket: set, but output is %q, not syslog or journald", l.Output))
	}
	return errs
}
