package guard

// The defaults of the caps, from the limit on open files (RLIMIT_NOFILE).
const (
	// minReserve is the least number of descriptors the caps leave to the
	// rest of the process: the UDP sockets, the admin listener and its
	// clients, the store, log files.
	minReserve = 64
	// perSource is the default cap of connections from one source: room
	// for an office of phones behind one NAT address.
	perSource = 100
	// maxDefault bounds the default MaxConnections whatever the limit on
	// open files: each connection holds a read buffer and a goroutine, and
	// under a limit of a million (Docker's) the cap would otherwise allow
	// tens of gigabytes of them. Kamailio's tcp_max_connections is 2048.
	maxDefault = 8192
)

// Reserve returns how many of nofile descriptors the default caps leave
// to the rest of the process: a tenth, and at least minReserve.
func Reserve(nofile uint64) uint64 {
	return max(minReserve, nofile/10)
}

// DefaultCaps returns the default MaxConnections and MaxPerSource for a
// process that may open nofile descriptors: half of what the reserve
// leaves, up to maxDefault. The caps bound the connections accepted and,
// apart, those the proxy opens (Guard.Control): the other half is theirs.
// One source may take half of MaxConnections at most, so that another
// gets in while it is at its cap.
func DefaultCaps(nofile uint64) (total, perSrc int) {
	r := Reserve(nofile)
	if nofile < r+2 {
		return 1, 1
	}
	total = int(min((nofile-r)/2, maxDefault))
	return total, min(perSource, max(1, total/2))
}
