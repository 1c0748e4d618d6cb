//go:build unix

package compare

import "syscall"

// cpuTime returns the CPU time used by the process (all threads, GC
// included), in nanoseconds. On a shared machine it measures a
// benchmark's cost better than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
