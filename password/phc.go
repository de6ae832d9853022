package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The PHC string format (https://github.com/P-H-C/phc-string-format): unpadded standard base64,
// parameters in the order m, t, p. Only version 19 (Argon2 1.3) exists in x/crypto and in every
// current implementation, so anything else is refused rather than guessed at.
const (
	argon2idPrefix = "$argon2id$v=19$"
	argon2iPrefix  = "$argon2i$v=19$"
)

// Accepted lengths of a stored salt and key. Other implementations use 8 to 32 byte salts and 16 to 64
// byte keys; shorter keys would be too weak to trust, and longer ones are not hashes anyone writes.
const (
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64
)

var b64 = base64.RawStdEncoding.Strict()

// variant is an Argon2 variant Verify checks: argon2id, which fluxauth writes, or argon2i, which
// imported accounts may carry (argon2d is refused: it is not meant for passwords).
type variant int

const (
	argon2id variant = iota
	argon2i
)

// name is the variant as the PHC string spells it.
func (v variant) name() string {
	if v == argon2i {
		return "argon2i"
	}
	return "argon2id"
}

func (v variant) prefix() string {
	if v == argon2i {
		return argon2iPrefix
	}
	return argon2idPrefix
}

// key derives keyLen bytes from pw with the variant's function.
func (v variant) key(pw string, salt []byte, p Params, keyLen uint32) []byte {
	if v == argon2i {
		return argon2.Key([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	}
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
}

func encodeArgon2id(p Params, salt, key []byte) string { return encodeArgon2(argon2id, p, salt, key) }

func encodeArgon2(v variant, p Params, salt, key []byte) string {
	return fmt.Sprintf("%s$%s$%s", paramsPrefix(v, p), b64.EncodeToString(salt), b64.EncodeToString(key))
}

// paramsPrefix is a PHC string up to its parameters, without the '$' that follows them.
func paramsPrefix(v variant, p Params) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d", v.prefix(), p.Memory, p.Time, p.Threads)
}

type decodedArgon2 struct {
	variant   variant
	params    Params
	salt, key []byte
}

// decodeArgon2 parses an argon2id or argon2i PHC string strictly: a hash that is not exactly what a
// conforming encoder writes is storage corruption, and must not be half-understood. Its errors never
// quote s.
func decodeArgon2(s string) (decodedArgon2, error) {
	var d decodedArgon2
	rest, ok := strings.CutPrefix(s, argon2idPrefix)
	if !ok {
		if rest, ok = strings.CutPrefix(s, argon2iPrefix); ok {
			d.variant = argon2i
		}
	}
	// base64 decoding skips CR and LF; refusing them keeps one hash, one spelling.
	if !ok || strings.ContainsAny(rest, "\r\n") {
		return d, fmt.Errorf("%w: not an argon2id or argon2i v=19 or bcrypt hash", ErrMalformedHash)
	}
	name := d.variant.name()
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return d, fmt.Errorf("%w: %s hash needs parameters, salt and key", ErrMalformedHash, name)
	}
	var err error
	if d.params, err = parseParams(fields[0], name); err != nil {
		return d, err
	}
	if d.salt, err = b64.DecodeString(fields[1]); err != nil || len(d.salt) < minSaltLen || len(d.salt) > maxSaltLen {
		return d, fmt.Errorf("%w: %s salt", ErrMalformedHash, name)
	}
	if d.key, err = b64.DecodeString(fields[2]); err != nil || len(d.key) < minKeyLen || len(d.key) > maxKeyLen {
		return d, fmt.Errorf("%w: %s key", ErrMalformedHash, name)
	}
	return d, nil
}

// parseParams parses "m=..,t=..,p=.." of a PHC string of the variant called name.
func parseParams(s, name string) (Params, error) {
	params := strings.Split(s, ",")
	if len(params) != 3 {
		return Params{}, fmt.Errorf("%w: %s parameters must be m, t and p", ErrMalformedHash, name)
	}
	m, errM := parseParam(params[0], "m=", 32)
	t, errT := parseParam(params[1], "t=", 32)
	p, errP := parseParam(params[2], "p=", 8)
	if errM != nil || errT != nil || errP != nil {
		return Params{}, fmt.Errorf("%w: %s parameters must be m, t and p, as decimal numbers", ErrMalformedHash, name)
	}
	ps := Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}
	// x/crypto panics on t=0 or p=0 and silently raises m below 8 KiB per lane.
	if ps.Time < 1 || ps.Threads < 1 || ps.Memory < 8*uint32(ps.Threads) {
		return Params{}, fmt.Errorf("%w: %s parameters out of range", ErrMalformedHash, name)
	}
	return ps, nil
}

// parseParam parses "name=value" where value is a canonical decimal (no sign, no leading zeros).
func parseParam(s, name string, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
		return 0, ErrMalformedHash
	}
	return strconv.ParseUint(v, 10, bits)
}
