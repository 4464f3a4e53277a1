package engine

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time of the OS thread the calling goroutine
// runs on (CLOCK_THREAD_CPUTIME_ID). It leaves out the time the thread
// waited for a core, and the time the host took the virtual CPU away where
// the kernel accounts steal time (CONFIG_PARAVIRT_TIME_ACCOUNTING); it
// counts the interrupts served on the thread unless the kernel accounts
// those apart (CONFIG_IRQ_TIME_ACCOUNTING). A raw system call: it cannot
// block, and the goroutine keeps its thread. It returns -1 when the clock
// cannot be read.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_, _, errno := unix.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_THREAD_CPUTIME_ID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return -1
	}
	return time.Duration(ts.Nano())
}
