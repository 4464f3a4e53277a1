package app

import (
	"log/slog"
	"syscall"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// raiseNoFile raises the limit on open files (RLIMIT_NOFILE) to the hard
// limit, as Go's runtime also does at start, logs it, and returns it: each
// TCP connection takes a descriptor, and the connection caps default to
// what the limit leaves after a reserve for the rest of the process.
func raiseNoFile(s config.Server, log *slog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("limit on open files unknown: connection caps off unless set", "error", err)
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("limit on open files not raised", "soft", lim.Cur, "hard", lim.Max, "error", err)
		} else {
			lim = raised
		}
	}
	l := engine.ConnectionLimits(s, lim.Cur)
	total, perSource := l.MaxConnections, l.MaxPerSource
	log.Info("open files", "limit", lim.Cur, "max_connections", total, "max_connections_per_source", perSource)
	// The caps count the connections accepted and, apart, those the proxy
	// opens: each may take total descriptors.
	if reserve := guard.Reserve(lim.Cur); 2*uint64(total)+reserve > lim.Cur {
		log.Warn("server.max_connections leaves too few descriptors: when it is reached, the admin listener and the store may fail; raise the limit on open files (LimitNOFILE in systemd, ulimit -n)",
			"max_connections", total, "limit", lim.Cur, "reserve", reserve)
	}
	return lim.Cur
}
