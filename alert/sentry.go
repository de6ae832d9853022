package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/fluxstudio/fluxauth"
)

// Defaults for SentryConfig.
const (
	// DefaultSentryTimeout bounds one delivery to Sentry. Deliveries run one at a time in the
	// background, so an ingest that stops answering delays only the reports queued behind it.
	DefaultSentryTimeout = 5 * time.Second
	// DedupeWindow is how long an error is reported once: the same failure repeating (a storm of
	// one database error) is counted, and the count goes with its next report.
	DedupeWindow = time.Minute
	// maxDistinctErrors bounds the memory of errors seen within DedupeWindow; errors beyond it are
	// counted and not sent until the window passes.
	maxDistinctErrors = 1000
	// maxBreadcrumbs is how many of the latest warnings go with each error report.
	maxBreadcrumbs = 20
)

// SentryConfig configures reporting to Sentry.
type SentryConfig struct {
	// DSN is the project's Sentry DSN; required.
	DSN string
	// Environment, Release ("fluxauth version") and ServerName label every event.
	Environment string
	Release     string
	ServerName  string
	// Scrubber cleans every event before it is sent; nil uses NewScrubber().
	Scrubber *Scrubber
	// Clock times the per-error dedupe; nil is the system clock.
	Clock fluxauth.Clock
	// Timeout bounds each delivery; DefaultSentryTimeout when 0.
	Timeout time.Duration
}

// Sentry reports to Sentry: error-level log records through Handler, alerts through Send. Events go
// to the SDK's background transport, whose queues are bounded and drop the oldest when full, so a
// slow or unreachable Sentry never holds up the caller; Close flushes them with a deadline.
type Sentry struct {
	client *sentry.Client
	clock  fluxauth.Clock

	mu     sync.Mutex
	seen   map[string]*seenError
	unsent int // distinct errors not reported because seen was full
	crumbs []*sentry.Breadcrumb
}

type seenError struct {
	until   time.Time
	repeats int
}

// NewSentry returns a reporter sending to cfg.DSN. It never reads SENTRY_* variables: a DSN left
// empty is an error, not a default from the environment.
func NewSentry(cfg SentryConfig) (*Sentry, error) {
	if cfg.DSN == "" {
		return nil, errors.New("alert: no Sentry DSN")
	}
	if cfg.Scrubber == nil {
		cfg.Scrubber = NewScrubber()
	}
	if cfg.Clock == nil {
		cfg.Clock = fluxauth.SystemClock{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSentryTimeout
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         cfg.DSN,
		Environment: cfg.Environment,
		Release:     cfg.Release,
		ServerName:  cfg.ServerName,
		BeforeSend:  cfg.Scrubber.Event,
		// Transactions and logs are never sent; scrub them anyway should a future SDK make some.
		BeforeSendTransaction: cfg.Scrubber.Event,
		BeforeSendLog:         func(*sentry.Log) *sentry.Log { return nil },
		BeforeBreadcrumb: func(b *sentry.Breadcrumb, _ *sentry.BreadcrumbHint) *sentry.Breadcrumb {
			return nil // fluxauth attaches its own, which BeforeSend scrubs
		},
		HTTPClient: &http.Client{Timeout: cfg.Timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("alert: FLUXAUTH_SENTRY_DSN: %w", err)
	}
	return &Sentry{client: client, clock: cfg.Clock, seen: map[string]*seenError{}}, nil
}

// Flush sends what is queued, waiting at most until ctx ends; false when events were left unsent.
func (s *Sentry) Flush(ctx context.Context) bool { return s.client.FlushWithContext(ctx) }

// Close sends what is queued, waiting at most until ctx ends, and stops the transport. It returns
// an error when events were left unsent.
func (s *Sentry) Close(ctx context.Context) error {
	ok := s.Flush(ctx)
	// Closing waits for a delivery in flight, up to the delivery timeout: not for shutdown to wait on.
	go s.client.Close()
	if !ok {
		return errors.New("alert: Sentry events left unsent at shutdown")
	}
	return nil
}

// Send reports an alert as a Sentry event: level error for a security event, warning for a
// threshold, tagged with the event type, severity, user and IP, and grouped into one issue per type.
func (s *Sentry) Send(a Alert) {
	ev := sentry.NewEvent()
	ev.Level = sentry.LevelError
	if a.Kind == KindThreshold {
		ev.Level = sentry.LevelWarning
	}
	ev.Timestamp = a.At
	ev.Logger = "fluxauth.alert"
	ev.Message = a.Text()
	ev.Fingerprint = []string{"fluxauth-alert", a.Type}
	ev.Tags = map[string]string{"alert": a.Kind, "event_type": a.Type, "severity": a.Severity}
	if a.UserID != "" {
		ev.Tags["user_id"] = a.UserID
	}
	if a.IP != "" {
		ev.Tags["ip"] = a.IP
	}
	details := map[string]any{}
	for k, v := range map[string]any{
		"event_id": a.EventID, "count": a.Count, "threshold": a.Threshold,
		"held_back": a.HeldBack, "missed_events": a.MissedEvents,
	} {
		if !reflect.ValueOf(v).IsZero() {
			details[k] = v
		}
	}
	if len(a.Metadata) > 0 {
		details["metadata"] = a.Metadata
	}
	ev.Contexts[detailsContext] = details
	s.client.CaptureEvent(ev, nil, nil)
}

// detailsContext is the event context that holds what fluxauth adds beyond tags: a log record's
// attributes, an alert's counts and metadata.
const detailsContext = "fluxauth"

// requestTags are the attributes of a request's log lines that become tags.
var requestTags = []string{"request_id", "route", "method", "status", "code"}

// localOnly are attributes that stay in the local log: a raw path can carry identifiers (the route
// pattern is reported instead).
var localOnly = []string{"path"}

// capture reports a record at error level or above, unless the same error was reported within
// DedupeWindow.
func (s *Sentry) capture(r slog.Record, attrs []slog.Attr) {
	ev := sentry.NewEvent()
	ev.Level = sentry.LevelError
	if r.Level > slog.LevelError {
		ev.Level = sentry.LevelFatal
	}
	ev.Timestamp = r.Time
	ev.Logger = "fluxauth"
	ev.Message = r.Message
	details := map[string]any{}
	ev.Contexts[detailsContext] = details
	var cause error
	var panicked any
	for _, a := range attrs {
		switch {
		case slices.Contains(requestTags, a.Key):
			ev.Tags[a.Key] = a.Value.String()
		case slices.Contains(localOnly, a.Key):
		case a.Key == "panic":
			panicked = a.Value.Any()
			if panicked == nil {
				panicked = "nil"
			}
		case a.Key == "err" || a.Key == "error":
			if err, ok := a.Value.Any().(error); ok {
				cause = err
			}
			details[a.Key] = a.Value.String()
		default:
			details[a.Key] = a.Value.Any()
		}
	}
	route := ev.Tags["route"]
	if route != "" {
		// Reports group by where they happened: every 500 passes through the same adapter, so the
		// stack alone would make one issue of all of them.
		ev.Transaction = route
		ev.Fingerprint = []string{"{{ default }}", route}
	}

	detail := ""
	stack := callerStack()
	switch {
	case panicked != nil:
		detail = fmt.Sprint(panicked)
		ev.Exception = []sentry.Exception{{
			Type: "panic", Value: detail, Stacktrace: stack,
			Mechanism: &sentry.Mechanism{Type: "panic", Handled: new(true)},
		}}
	case cause != nil:
		detail = cause.Error()
		ev.SetException(cause, 10)
		ev.Exception[len(ev.Exception)-1].Stacktrace = stack
	default:
		ev.Threads = []sentry.Thread{{Stacktrace: stack, Current: true}}
	}

	key := r.Message + "\x00" + route + "\x00" + ev.Tags["code"] + "\x00" + normalize(detail)
	repeats, unsent, ok := s.firstInWindow(key)
	if !ok {
		return
	}
	if repeats > 0 {
		details["repeats_not_reported"] = repeats
	}
	if unsent > 0 {
		details["other_errors_not_reported"] = unsent
	}
	ev.Breadcrumbs = s.breadcrumbs()
	s.client.CaptureEvent(ev, nil, nil)
}

// variable matches what differs between occurrences of one error: numbers, UUIDs, hex digests.
var variable = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-f]{16,}|[0-9]+`)

// normalize makes one key of an error's occurrences: "timeout after 25ms on 10.0.0.7" and
// "timeout after 31ms on 10.0.0.8" are one error.
func normalize(detail string) string { return variable.ReplaceAllString(detail, "#") }

// firstInWindow reports whether key is to be reported now: not reported within DedupeWindow. With
// it come how often key repeated unreported in its last window, and how many distinct errors went
// unreported because too many were being tracked.
func (s *Sentry) firstInWindow(key string) (repeats, unsent int, ok bool) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.seen[key]
	if e != nil && now.Before(e.until) {
		e.repeats++
		return 0, 0, false
	}
	if e == nil && len(s.seen) >= maxDistinctErrors {
		for k, old := range s.seen {
			if !now.Before(old.until) {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxDistinctErrors {
			s.unsent++
			return 0, 0, false
		}
	}
	if e != nil {
		repeats = e.repeats
	}
	s.seen[key] = &seenError{until: now.Add(DedupeWindow)}
	unsent, s.unsent = s.unsent, 0
	return repeats, unsent, true
}

// addBreadcrumb keeps a warning for the next error reports: what went wrong just before.
func (s *Sentry) addBreadcrumb(r slog.Record, attrs []slog.Attr) {
	data := map[string]any{}
	for _, a := range attrs {
		if !slices.Contains(localOnly, a.Key) {
			data[a.Key] = a.Value.String()
		}
	}
	b := &sentry.Breadcrumb{Type: "default", Category: "log", Level: sentry.LevelWarning,
		Message: r.Message, Data: data, Timestamp: r.Time}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.crumbs) == maxBreadcrumbs {
		copy(s.crumbs, s.crumbs[1:])
		s.crumbs = s.crumbs[:maxBreadcrumbs-1]
	}
	s.crumbs = append(s.crumbs, b)
}

// breadcrumbs returns copies of the kept warnings: BeforeSend changes the event's in place.
func (s *Sentry) breadcrumbs() []*sentry.Breadcrumb {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*sentry.Breadcrumb, len(s.crumbs))
	for i, b := range s.crumbs {
		c := *b
		out[i] = &c
	}
	return out
}

// alertPackage is this package's import path, as stack frames name it.
var alertPackage = reflect.TypeFor[Sentry]().PkgPath()

// callerStack is the stack of the code that logged: the logging machinery's frames (slog, the
// handlers that wrap it) are cut off. Logged while a panic unwinds, it is the stack of the panic.
func callerStack() *sentry.Stacktrace {
	st := sentry.NewStacktrace()
	if st == nil {
		return nil
	}
	for len(st.Frames) > 0 {
		f := st.Frames[len(st.Frames)-1]
		if f.Module == "log/slog" || f.Module == alertPackage || strings.HasSuffix(f.Function, "Handler).Handle") ||
			strings.HasSuffix(f.Function, "Handler.Handle") {
			st.Frames = st.Frames[:len(st.Frames)-1]
			continue
		}
		break
	}
	return st
}
