package api

import (
	"net/http"
	"net/http/pprof"
)

// InternalHandler serves what only operators may see, on a listener of its own: /metrics for
// Prometheus (the security counters would show an attacker how they are being watched) and Go's
// pprof profiles under /debug/pprof/. m may be nil when nothing is measured.
func InternalHandler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", m.handler())
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
