package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/breaker"
)

// Metrics are the Prometheus series fluxauth exports on /metrics.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	waits    *prometheus.HistogramVec
	events   *prometheus.CounterVec
}

// NewMetrics registers fluxauth's series and the Go runtime's on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxauth_http_requests_total", Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fluxauth_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fluxauth_http_request_dependency_wait_seconds",
			Help:    "Time one HTTP request spent waiting on a dependency it can do without (Redis), in all its calls; only requests that called it.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"dependency"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxauth_security_events_total", Help: "Security events recorded, by type and severity.",
		}, []string{"type", "severity"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.waits, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ExportSetAside exports count, the audit recorder's tally of events the database refused for what
// they hold (audit.Recorder.SetAside), as fluxauth_audit_events_set_aside_total: each is an event
// missing from the audit log, which an alert should bring to an operator.
func (m *Metrics) ExportSetAside(count func() uint64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fluxauth_audit_events_set_aside_total",
		Help: "Security events the database refused for what they hold, logged and left out of the audit log.",
	}, func() float64 { return float64(count()) }))
}

// ExportSubscriberDrops exports count, the events a subscriber of the audit recorder missed because
// it fell behind (audit.Subscription.Dropped), as fluxauth_audit_subscriber_dropped_total with the
// subscriber's name: alerts or counts may be missing for them.
func (m *Metrics) ExportSubscriberDrops(subscriber string, count func() uint64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "fluxauth_audit_subscriber_dropped_total",
		Help:        "Security events a live subscriber of the audit log missed because it had fallen behind.",
		ConstLabels: prometheus.Labels{"subscriber": subscriber},
	}, func() float64 { return float64(count()) }))
}

// CountEvent counts one recorded security event.
func (m *Metrics) CountEvent(ev fluxauth.SecurityEvent) {
	m.events.WithLabelValues(ev.Type, ev.Severity).Inc()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// withMetrics wraps the mux itself, so the route pattern the mux matched is known; labels are
// patterns, never raw paths, which would let clients mint unbounded series.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	if s.Metrics == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		ctx, waits := breaker.WithWaits(r.Context())
		r = r.WithContext(ctx)
		// A panicking handler is counted as the 500 withRecover answers for it, then the panic
		// goes on up to withRecover.
		defer func() {
			v := recover()
			if v != nil && v != http.ErrAbortHandler {
				rec.status = http.StatusInternalServerError
			}
			waits.Each(func(dependency string, waited time.Duration) {
				s.Metrics.waits.WithLabelValues(dependency).Observe(waited.Seconds())
			})
			route := r.Pattern
			if route == "" || route == "/" {
				route = "unmatched"
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			s.Metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
			s.Metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			if v != nil {
				panic(v)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}
