package guard

// The defaults of the caps, from the limit on open files (RLIMIT_NOFILE).
const (
	// minReserve is the least number of descriptors the caps leave to the
	// rest of the process: the UDP sockets, the admin listener and its
	// clients, the store, log files, connections the proxy opens itself.
	minReserve = 64
	// perSource is the default cap of connections from one source: room
	// for an office of phones behind one NAT address.
	perSource = 100
)

// Reserve returns how many of nofile descriptors the default caps leave
// to the rest of the process: a tenth, and at least minReserve.
func Reserve(nofile uint64) uint64 {
	return max(minReserve, nofile/10)
}

// DefaultCaps returns the default MaxConnections and MaxPerSource for a
// process that may open nofile descriptors.
func DefaultCaps(nofile uint64) (total, perSrc int) {
	r := Reserve(nofile)
	if nofile <= r {
		return 1, 1
	}
	total = int(min(nofile-r, 1<<30))
	return total, min(perSource, total)
}
