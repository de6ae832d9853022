// Package alert owns what fluxauth tells people when something needs their attention: server errors
// reported to Sentry (every error-level log line, which covers 500s, recovered panics and background
// failures), and security alerts (critical security events and crossed thresholds) sent to Sentry
// and to a webhook. Nothing here runs on a request's behalf beyond a non-blocking hand-off: alerts
// are built from the audit recorder's subscription, and reports leave the process from background
// queues that are bounded and drop rather than wait. Everything that leaves is scrubbed of secrets
// first (Scrubber).
package alert

import (
	"fmt"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth/ratelimit"
)

// Kinds of alert.
const (
	// KindSecurityEvent is a critical security event, one alert per event.
	KindSecurityEvent = "security_event"
	// KindThreshold is a count crossing its threshold, one alert per key per window.
	KindThreshold = "threshold"
)

// Threshold alert types: what was counted, and per what.
const (
	FailedLoginsPerIP      = "failed_logins_ip"
	FailedLoginsPerAccount = "failed_logins_account"
	RateLimitedPerIP       = "rate_limited_ip"
)

// Alert is one finding a person should look at.
type Alert struct {
	Kind string `json:"kind"`
	// Type groups alerts into one Sentry issue and one cap: the security event's type, or the
	// threshold's (FailedLoginsPerIP, …).
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	At       time.Time `json:"at"`
	UserID   string    `json:"userId,omitempty"`
	IP       string    `json:"ip,omitempty"`
	// EventID is the security event's ID in the audit log.
	EventID  string         `json:"eventId,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Count and Threshold describe a crossed threshold: Count events within the window of
	// Threshold ("50/5m").
	Count     int    `json:"count,omitempty"`
	Threshold string `json:"threshold,omitempty"`
	// HeldBack is how many alerts of this Type this instance did not send in the minute before this
	// one, because of the cap on alerts per type per minute.
	HeldBack int `json:"heldBack,omitempty"`
	// MissedEvents is how many security events the alerting subscriber missed (it had fallen
	// behind) since the previous alert: alerts may be missing for them.
	MissedEvents uint64 `json:"missedEvents,omitempty"`
}

// Title is the alert in a few words, the same for every alert of its Type.
func (a Alert) Title() string {
	switch a.Type {
	case FailedLoginsPerIP:
		return "Many failed logins from one IP address"
	case FailedLoginsPerAccount:
		return "Many failed logins against one account"
	case RateLimitedPerIP:
		return "Many rate-limited requests from one IP address"
	}
	return "Security event: " + a.Type
}

// Text is the alert as one line for people: a chat message's text.
func (a Alert) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fluxauth %s alert: %s", a.Severity, a.Title())
	if a.Kind == KindThreshold {
		fmt.Fprintf(&b, " (%d in the window of %s)", a.Count, a.Threshold)
	}
	if a.UserID != "" {
		fmt.Fprintf(&b, ", user %s", a.UserID)
	}
	if a.IP != "" {
		fmt.Fprintf(&b, ", IP %s", a.IP)
	}
	if reason, ok := a.Metadata["reason"].(string); ok && reason != "" {
		fmt.Fprintf(&b, ", reason %s", reason)
	}
	if a.HeldBack > 0 {
		fmt.Fprintf(&b, "; %d more of this type held back in the last minute", a.HeldBack)
	}
	if a.MissedEvents > 0 {
		fmt.Fprintf(&b, "; %d security events were missed by alerting", a.MissedEvents)
	}
	return b.String()
}

// Thresholds are the counts that raise an alert; the zero Limit switches one off. Only Rate and
// Period matter: Rate events within Period.
type Thresholds struct {
	// FailedLogins counts failed_login events per client IP and, separately, per account (logins
	// refused by the lockout are failed_login events too).
	FailedLogins ratelimit.Limit
	// RateLimited counts 429 answers per client IP.
	RateLimited ratelimit.Limit
}

// Sink delivers alerts. Send must not block: it queues or drops.
type Sink interface {
	Send(Alert)
}

var (
	_ Sink = (*Sentry)(nil)
	_ Sink = (*Webhook)(nil)
)
