//go:build !unix

package compare

func cpuTime() int64 { return 0 }
