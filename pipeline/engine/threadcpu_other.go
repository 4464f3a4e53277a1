//go:build !linux

package engine

import "time"

// threadCPU reports no thread CPU time: the reader's share charges the
// wall clock instead.
func threadCPU() (time.Duration, bool) { return 0, false }
