package api

import (
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

// withLimitReport lets the account service report the limits a request passes, so that every
// answer of a limited endpoint, success or failure, carries the RateLimit headers.
func (s *Server) withLimitReport(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(account.WithLimitReport(r.Context(), &account.LimitReport{})))
	})
}

// limitsOf returns the tightest decision reported for r, if any.
func limitsOf(r *http.Request) *ratelimit.Result { return account.ReportedLimit(r.Context()) }
