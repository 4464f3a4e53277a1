//go:build !linux

package engine

import (
	"syscall"
	"time"
)

// stampOOB is no room: only Linux stamps datagrams here.
var stampOOB = 0

// stampArrivals reports that the kernel stamps no datagram.
func stampArrivals(syscall.Conn) bool { return false }

// arrivedAt finds no receive time: no datagram is stamped.
func arrivedAt([]byte) (time.Time, bool) { return time.Time{}, false }
