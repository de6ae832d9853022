package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// setRateLimitHeaders sends the IETF RateLimit-* headers of a decision, and Retry-After when it refused.
func setRateLimitHeaders(h http.Header, res *ratelimit.Result) {
	if res == nil || res.Limit == 0 {
		return
	}
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(res.ResetAfter)))
	if !res.Allowed {
		h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(res.RetryAfter))))
	}
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// limitOf returns the rate-limit decision carried by err, if any.
func limitOf(err error) *ratelimit.Result {
	var le *account.LimitError
	if errors.As(err, &le) {
		return &le.Result
	}
	return nil
}
