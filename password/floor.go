package password

import (
	"context"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// maxMeasured bounds how many parameter sets a Hasher remembers having measured. Imported hashes
// are checked by CheckImported, so a store holds a handful; the bound keeps a hostile table from
// growing the map without end. A set met after the map is full does not raise the floor.
const maxMeasured = 64

// bcryptKeyLen is the length of a bcrypt hash's parameter key: "$2b$12$".
const bcryptKeyLen = 7

// ParamsKey returns the part of a stored hash that says what verifying it costs, and nothing of its
// salt or key: "$2b$12$" for a bcrypt hash of cost 12, "$argon2id$v=19$m=65536,t=3,p=4$" for an
// argon2id (or argon2i) PHC string, up to and including the '$' after its parameters. It is what
// fluxauth.UserStore.PasswordHashParams computes in SQL. It returns "" for a hash Verify would refuse
// as malformed, whatever its cost.
func ParamsKey(hash string) string {
	if isBcrypt(hash) {
		if len(hash) != bcryptLen {
			return ""
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return ""
		}
		return hash[:bcryptKeyLen]
	}
	d, err := decodeArgon2(hash)
	if err != nil {
		return ""
	}
	return argon2Key(d.variant, d.params)
}

func argon2Key(v variant, p Params) string { return paramsPrefix(v, p) + "$" }

// dummyFor returns a hash whose parameter key is key, which no password matches, and which h
// accepts for verification; false when key is no key of such a hash.
func (h *Hasher) dummyFor(key string) (string, bool) {
	var dummy string
	if isBcrypt(key) {
		// 22 salt and 31 hash characters of bcrypt's alphabet: an all-zero salt and a digest no
		// password has. The cost is spent all the same.
		dummy = key + strings.Repeat(".", bcryptLen-bcryptKeyLen)
		if ParamsKey(dummy) != key {
			return "", false
		}
		if cost, _ := bcrypt.Cost([]byte(dummy)); cost > h.limitBcryptCost {
			return "", false
		}
		return dummy, true
	}
	// An all-zero salt and key at the key's parameters: verifying against it costs one computation
	// at them, and no password derives an all-zero key.
	dummy = key + b64.EncodeToString(make([]byte, saltLen)) + "$" + b64.EncodeToString(make([]byte, keyLen))
	d, err := decodeArgon2(dummy)
	if err != nil || argon2Key(d.variant, d.params) != key || d.params.Memory > h.limitMemory || d.params.Time > h.limitTime {
		return "", false
	}
	return dummy, true
}

// Calibrate sets h's Floor to the slowest of the verifications its own parameters and those of
// keys (ParamsKey of each stored hash; repeats and keys of no valid hash are skipped) can cost. Each
// is measured as the fastest of 3 verifications of a dummy hash with those parameters: load only
// adds time. A key measured before is measured again. It returns only ctx.Err().
func (h *Hasher) Calibrate(ctx context.Context, keys []string) error {
	seen := map[string]bool{}
	for _, key := range append([]string{argon2Key(argon2id, h.params)}, keys...) {
		dummy, ok := h.dummyFor(key)
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		fastest := time.Duration(-1)
		for range 3 {
			took, err := h.timed(ctx, func() { h.Verify(ctx, dummy, "") })
			if err != nil {
				return err
			}
			if fastest < 0 || took < fastest {
				fastest = took
			}
		}
		h.record(key, fastest, true)
	}
	return nil
}

// timed runs fn, which verifies one hash, and returns how long it took, or ctx.Err() when ctx ended
// during it (fn may then have stopped early, waiting for the pool).
func (h *Hasher) timed(ctx context.Context, fn func()) (time.Duration, error) {
	start := time.Now()
	fn()
	took := time.Since(start)
	return took, ctx.Err()
}

// Floor is how long the slowest verification h has measured took: Calibrate's, raised by Verify
// when it meets a parameter set for the first time. It is 0 until one was measured.
func (h *Hasher) Floor() time.Duration { return time.Duration(h.floor.Load()) }

// PadHeadroom is how many Floors Pad waits: Floor is a verification's fastest time when measured, and
// a machine under load verifies slower than that, so padding to Floor alone would leave the slowest
// hashes answering later than the rest whenever the machine is busy (measured under CI's race
// detector on two loaded cores: bcrypt answers 1.32× the padded ones). Twice leaves room for that.
const PadHeadroom = 2

// Pad waits until start plus PadHeadroom × Floor, so that an answer takes no less than the slowest
// verification a stored hash can need, whether or not it verified one, even on a busy machine. It
// returns ctx.Err() when ctx ends first.
//
// It waits on the wall clock (a time.Timer), not on the app's fluxauth.Clock, on purpose: an attacker
// times answers in real time, and a clock that tests can stop or move would pad nothing, or forever.
// Waiting costs no CPU and holds no pool slot.
func (h *Hasher) Pad(ctx context.Context, start time.Time) error {
	wait := time.Until(start.Add(PadHeadroom * h.Floor()))
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// computeMeasured is compute for a verification at the parameter key: the first one at a key h has
// not measured is timed, and raises the floor to its duration.
func (h *Hasher) computeMeasured(ctx context.Context, key string, fn func()) error {
	h.floorMu.Lock()
	_, known := h.measured[key]
	h.floorMu.Unlock()
	if known {
		return h.compute(ctx, fn)
	}
	var took time.Duration
	err := h.compute(ctx, func() {
		start := time.Now()
		fn()
		took = time.Since(start)
	})
	if err == nil {
		h.record(key, took, false)
	}
	return err
}

// record keeps took as the cost of key and sets the floor to the largest cost kept. Unless
// replace, a key already kept keeps its cost: only the first verification at new parameters counts.
func (h *Hasher) record(key string, took time.Duration, replace bool) {
	h.floorMu.Lock()
	defer h.floorMu.Unlock()
	if _, ok := h.measured[key]; ok && !replace {
		return
	} else if !ok && len(h.measured) >= maxMeasured {
		return
	}
	h.measured[key] = took
	var floor time.Duration
	for _, d := range h.measured {
		floor = max(floor, d)
	}
	h.floor.Store(int64(floor))
}
