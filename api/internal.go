package api

import "net/http"

// InternalHandler serves what only operators may see, on a listener of its own: the Internal routes,
// /metrics for Prometheus (the security counters would show an attacker how they are being watched)
// and Go's pprof profiles under /debug/pprof/. m is what /metrics serves.
func InternalHandler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	(&Server{Metrics: m}).register(mux, true)
	return mux
}
