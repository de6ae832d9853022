//go:build !unix

package token

// lockFile does not lock where flock is unavailable: fluxauth is deployed on Unix, and key rotation
// is an operator action run one at a time. Creation stays safe without it (see createFileExclusive).
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
