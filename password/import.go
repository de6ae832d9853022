package password

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on the hashes an import may bring in, well below what Verify accepts of a stored hash: each
// one sets how slow every login answer is (see Hasher.Floor), so no imported account may cost more
// than the old server's most expensive settings.
const (
	importMinBcryptCost = 4
	importMaxBcryptCost = 14
	importMaxMemory     = 65536 // KiB: 64 MiB
	importMaxTime       = 10
	importMaxThreads    = 8
)

// ErrImportRefused is wrapped by every error of CheckImported.
var ErrImportRefused = errors.New("password: imported hash refused")

// bcryptAlphabet is bcrypt's base64 alphabet, in which its salt and digest are written.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// CheckImported reports whether hash, brought over from another system, is one fluxauth may store: a
// bcrypt hash ($2a$, $2b$ or $2y$, 60 characters, cost 4 to 14, salt and digest in bcrypt's
// alphabet) or an argon2id or argon2i v=19 PHC string as Verify reads it with memory at most
// 65536 KiB, time at most 10 and parallelism at most 8. Anything else, the empty string included, is
// an error wrapping ErrImportRefused that says what is wrong and never quotes the hash.
func CheckImported(hash string) error {
	if isBcrypt(hash) {
		return checkImportedBcrypt(hash)
	}
	d, err := decodeArgon2(hash)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrImportRefused, err)
	}
	name := d.variant.name()
	switch {
	case d.params.Memory > importMaxMemory:
		return fmt.Errorf("%w: %s memory m=%d is over the bound of %d KiB", ErrImportRefused, name, d.params.Memory, importMaxMemory)
	case d.params.Time > importMaxTime:
		return fmt.Errorf("%w: %s time t=%d is over the bound of %d", ErrImportRefused, name, d.params.Time, importMaxTime)
	case d.params.Threads > importMaxThreads:
		return fmt.Errorf("%w: %s parallelism p=%d is over the bound of %d", ErrImportRefused, name, d.params.Threads, importMaxThreads)
	}
	return nil
}

func checkImportedBcrypt(hash string) error {
	if len(hash) != bcryptLen {
		return fmt.Errorf("%w: a bcrypt hash is %d characters, not %d", ErrImportRefused, bcryptLen, len(hash))
	}
	if hash[6] != '$' || hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' {
		return fmt.Errorf("%w: bcrypt cost must be two digits followed by $", ErrImportRefused)
	}
	cost, _ := strconv.Atoi(hash[4:6])
	if cost < importMinBcryptCost || cost > importMaxBcryptCost {
		return fmt.Errorf("%w: bcrypt cost %d is outside the bounds %d to %d", ErrImportRefused, cost, importMinBcryptCost, importMaxBcryptCost)
	}
	for i := bcryptKeyLen; i < len(hash); i++ {
		if strings.IndexByte(bcryptAlphabet, hash[i]) < 0 {
			return fmt.Errorf("%w: bcrypt salt or digest has a character outside bcrypt's alphabet", ErrImportRefused)
		}
	}
	return nil
}
