// Package password owns everything fluxauth does with a user's password: hashing it with argon2id,
// verifying it against argon2id or the old app's bcrypt hashes (and saying when a hash should be
// upgraded), the bounded pool that caps how many hashes run at once, the timing floor that makes
// every login answer as slow as the slowest stored hash can make one, and the NIST SP 800-63B policy a new password
// must meet.
//
// The common-password list (common-passwords.txt) is the first 10,000 entries, in frequency order, of
// the "passwords" list in zxcvbn 4.4.2 (npm package zxcvbn, lib/frequency_lists.js, MIT licence,
// Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc.), itself drawn from Mark Burnett's 10 million
// password corpus (xato.net, public domain). It is stored lowercase, one password a line.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// Lengths of what Hash writes. Verify accepts other lengths within sane bounds (hashes made
// elsewhere), and reports them as needing a rehash.
const (
	saltLen = 16
	keyLen  = 32
)

// Ceilings on the cost of a stored hash. Nothing fluxauth writes comes near them; they exist so that a
// corrupt or hostile row in the users table cannot make one verification allocate gigabytes or spin
// for minutes while holding a pool slot.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxTime       = 64
	maxBcryptCost = 16 // about 64× the usual cost 10: seconds, not hours
)

// ErrMalformedHash is returned by Verify when the stored hash is not an argon2 PHC string or a bcrypt
// hash it can check. It means bad data in storage, never a wrong password; the message it carries
// never includes the hash or the password.
var ErrMalformedHash = errors.New("password: malformed hash")

// Params are the argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
}

// Validate reports whether p can be used to hash, so cmd/ can reject a bad configuration at start-up
// rather than at the first login.
func (p Params) Validate() error {
	var problems []string
	if p.Time < 1 || p.Time > maxTime {
		problems = append(problems, fmt.Sprintf("time must be between 1 and %d", maxTime))
	}
	if p.Threads < 1 {
		problems = append(problems, "threads must be at least 1")
	}
	// argon2 needs 8 KiB per lane; below that x/crypto silently rounds up, which would make the
	// encoded m= lie about the work done.
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		problems = append(problems, fmt.Sprintf("memory must be between 8 KiB per thread and %d KiB", maxMemory))
	}
	if len(problems) > 0 {
		return fmt.Errorf("password: invalid argon2id parameters: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Hasher hashes and verifies passwords. At most a fixed number of hash computations run at once,
// across all its methods; the rest wait their turn, or give up when their context ends. It is safe for
// concurrent use. Make one with New: the zero value has no pool.
type Hasher struct {
	params Params
	pool   *semaphore.Weighted // a computation holds one unit while it runs

	randMu sync.Mutex // lets tests inject a reader that is not safe for concurrent use
	rand   io.Reader

	floorMu  sync.Mutex
	measured map[string]time.Duration // the fastest verification met at each parameter key
	floor    atomic.Int64             // nanoseconds: the largest of measured; see Floor

	// Limits on stored hashes; the package ceilings, lowered by the fuzz test so that it can feed
	// anything to Verify without the machine running out of memory.
	limitMemory, limitTime uint32
	limitBcryptCost        int

	// testHook, when set, observes the pool; tests use it to count and hold computations.
	testHook func(poolEvent)
}

type poolEvent int

const (
	eventWaiting  poolEvent = iota // a computation is about to wait for a slot
	eventStarted                   // it holds a slot and is about to compute
	eventFinished                  // it is done computing and about to give the slot back
)

// New returns a Hasher that hashes with params, runs at most workers computations at once (runtime.GOMAXPROCS(0) when workers <= 0: more would only queue
// for the CPU while holding their memory), and draws salts from rand (crypto/rand when nil).
// New panics if params are invalid: configuration is validated in cmd/ with Params.Validate first.
func New(params Params, workers int, rand io.Reader) *Hasher {
	if err := params.Validate(); err != nil {
		panic(err)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if rand == nil {
		rand = cryptoRand
	}
	return &Hasher{
		params:          params,
		pool:            semaphore.NewWeighted(int64(workers)),
		rand:            rand,
		measured:        map[string]time.Duration{},
		limitMemory:     maxMemory,
		limitTime:       maxTime,
		limitBcryptCost: maxBcryptCost,
	}
}

var cryptoRand = rand.Reader

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the argon2id PHC string of pw with a fresh salt, for example
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>. It waits for a pool slot, and returns ctx.Err() without
// hashing if ctx ends first.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, saltLen)
	h.randMu.Lock()
	_, err := io.ReadFull(h.rand, salt)
	h.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	var key []byte
	err = h.compute(ctx, func() {
		key = argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	})
	if err != nil {
		return "", err
	}
	return encodeArgon2id(h.params, salt, key), nil
}

// Verify reports whether pw matches encodedHash, an argon2id or argon2i PHC string or a legacy bcrypt
// hash ($2a$, $2b$, $2y$). When it matches, needsRehash says the caller should store a fresh Hash of
// pw: always for bcrypt and argon2i, and for argon2id hashes made with other parameters or lengths
// than h's. A wrong password is ok == false with a nil error. A hash Verify cannot check is an error
// wrapping ErrMalformedHash; a context that ends while waiting for the pool returns ctx.Err().
// The first verification at a parameter set h has not measured raises h's Floor to its duration.
func (h *Hasher) Verify(ctx context.Context, encodedHash, pw string) (ok, needsRehash bool, err error) {
	if isBcrypt(encodedHash) {
		return h.verifyBcrypt(ctx, encodedHash, pw)
	}
	d, err := decodeArgon2(encodedHash)
	if err != nil {
		return false, false, err
	}
	if d.params.Memory > h.limitMemory || d.params.Time > h.limitTime {
		return false, false, fmt.Errorf("%w: %s cost above the accepted maximum", ErrMalformedHash, d.variant.name())
	}
	var key []byte
	err = h.computeMeasured(ctx, argon2Key(d.variant, d.params), func() {
		key = d.variant.key(pw, d.salt, d.params, uint32(len(d.key)))
	})
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(key, d.key) != 1 {
		return false, false, nil
	}
	return true, d.variant != argon2id || d.params != h.params || len(d.salt) != saltLen || len(d.key) != keyLen, nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// bcryptLen is the length of every bcrypt hash: "$2b$", two cost digits, "$", 22 salt and 31 hash
// characters. x/crypto ignores anything past it, so Verify checks the length itself.
const bcryptLen = 60

func (h *Hasher) verifyBcrypt(ctx context.Context, encodedHash, pw string) (ok, needsRehash bool, err error) {
	if len(encodedHash) != bcryptLen {
		return false, false, fmt.Errorf("%w: bcrypt hash of the wrong length", ErrMalformedHash)
	}
	cost, err := bcrypt.Cost([]byte(encodedHash))
	if err != nil {
		return false, false, fmt.Errorf("%w: bcrypt cost", ErrMalformedHash)
	}
	if cost > h.limitBcryptCost {
		return false, false, fmt.Errorf("%w: bcrypt cost above the accepted maximum", ErrMalformedHash)
	}
	var cmpErr error
	if err := h.computeMeasured(ctx, encodedHash[:bcryptKeyLen], func() {
		cmpErr = bcrypt.CompareHashAndPassword([]byte(encodedHash), []byte(pw))
	}); err != nil {
		return false, false, err
	}
	switch {
	case cmpErr == nil:
		return true, true, nil
	case errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		// x/crypto's bcrypt errors describe the hash, not the password, but keep our own words.
		return false, false, fmt.Errorf("%w: bcrypt salt or hash", ErrMalformedHash)
	}
}

// compute runs fn while holding a pool slot. A caller whose ctx has already ended never computes, even
// when a slot is free.
func (h *Hasher) compute(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.hook(eventWaiting)
	if err := h.pool.Acquire(ctx, 1); err != nil {
		return err
	}
	defer h.pool.Release(1)
	// Acquire may still succeed after ctx has ended (a slot freed just as it did); do not spend a hash
	// on a caller that has gone.
	if err := ctx.Err(); err != nil {
		return err
	}
	h.hook(eventStarted)
	fn()
	h.hook(eventFinished)
	return nil
}

func (h *Hasher) hook(e poolEvent) {
	if h.testHook != nil {
		h.testHook(e)
	}
}
