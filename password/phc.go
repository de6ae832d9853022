package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// The PHC string format (https://github.com/P-H-C/phc-string-format): unpadded standard base64,
// parameters in the order m, t, p. Only version 19 (Argon2 1.3) exists in x/crypto and in every
// current implementation, so anything else is refused rather than guessed at.
const argon2idPrefix = "$argon2id$v=19$"

// Accepted lengths of a stored salt and key. Other implementations use 8 to 32 byte salts and 16 to 64
// byte keys; shorter keys would be too weak to trust, and longer ones are not hashes anyone writes.
const (
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64
)

var b64 = base64.RawStdEncoding.Strict()

func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", argon2idPrefix, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

type decodedArgon2id struct {
	params    Params
	salt, key []byte
}

// decodeArgon2id parses an argon2id PHC string strictly: a hash that is not exactly what a conforming
// encoder writes is storage corruption, and must not be half-understood. Its errors never quote s.
func decodeArgon2id(s string) (decodedArgon2id, error) {
	var d decodedArgon2id
	rest, ok := strings.CutPrefix(s, argon2idPrefix)
	// base64 decoding skips CR and LF; refusing them keeps one hash, one spelling.
	if !ok || strings.ContainsAny(rest, "\r\n") {
		return d, fmt.Errorf("%w: not an argon2id v=19 or bcrypt hash", ErrMalformedHash)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return d, fmt.Errorf("%w: argon2id hash needs parameters, salt and key", ErrMalformedHash)
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return d, fmt.Errorf("%w: argon2id parameters must be m, t and p", ErrMalformedHash)
	}
	m, errM := parseParam(params[0], "m=", 32)
	t, errT := parseParam(params[1], "t=", 32)
	p, errP := parseParam(params[2], "p=", 8)
	if errM != nil || errT != nil || errP != nil {
		return d, fmt.Errorf("%w: argon2id parameters must be m, t and p, as decimal numbers", ErrMalformedHash)
	}
	d.params = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}
	// x/crypto panics on t=0 or p=0 and silently raises m below 8 KiB per lane.
	if d.params.Time < 1 || d.params.Threads < 1 || d.params.Memory < 8*uint32(d.params.Threads) {
		return d, fmt.Errorf("%w: argon2id parameters out of range", ErrMalformedHash)
	}
	var err error
	if d.salt, err = b64.DecodeString(fields[1]); err != nil || len(d.salt) < minSaltLen || len(d.salt) > maxSaltLen {
		return d, fmt.Errorf("%w: argon2id salt", ErrMalformedHash)
	}
	if d.key, err = b64.DecodeString(fields[2]); err != nil || len(d.key) < minKeyLen || len(d.key) > maxKeyLen {
		return d, fmt.Errorf("%w: argon2id key", ErrMalformedHash)
	}
	return d, nil
}

// parseParam parses "name=value" where value is a canonical decimal (no sign, no leading zeros).
func parseParam(s, name string, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
		return 0, ErrMalformedHash
	}
	return strconv.ParseUint(v, 10, bits)
}
