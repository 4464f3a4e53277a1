//go:build !linux

package engine

import "time"

// threadCPU reports no thread CPU time (-1): the reader's share charges
// the wall clock instead.
func threadCPU() time.Duration { return -1 }
