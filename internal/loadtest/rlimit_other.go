//go:build !unix

package loadtest

import "time"

// RaiseFileLimit is a no-op where there is no RLIMIT_NOFILE.
func RaiseFileLimit(want uint64) (uint64, error) { return want, nil }

// processCPU is unknown here.
func processCPU() time.Duration { return 0 }
