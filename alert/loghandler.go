package alert

import (
	"context"
	"log/slog"
)

// Handler returns a slog.Handler that passes every record to next and reports those at error level
// and above to Sentry: the 500s the API adapter logs, recovered panics, and failures outside
// requests (cleanup, the audit recorder, key reloads). Warnings are kept as the breadcrumbs of the
// next reports. A record logged with a request's context carries its request_id when the handler
// that adds it wraps this one.
func (s *Sentry) Handler(next slog.Handler) slog.Handler {
	return &logHandler{next: next, s: s}
}

type logHandler struct {
	next  slog.Handler
	s     *Sentry
	attrs []slog.Attr // from WithAttrs, with their groups' prefixes
	group string      // "a.b." for WithGroup("a").WithGroup("b")
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || h.next.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		attrs := append([]slog.Attr(nil), h.attrs...)
		r.Attrs(func(a slog.Attr) bool {
			attrs = appendFlat(attrs, h.group, a)
			return true
		})
		if r.Level >= slog.LevelError {
			h.s.capture(r, attrs)
		} else {
			h.s.addBreadcrumb(r, attrs)
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = appendFlat(c.attrs, h.group, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = h.group + name + "."
	return &c
}

// appendFlat appends a, resolved, with groups written as dotted prefixes of their members' keys.
func appendFlat(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, m := range a.Value.Group() {
			dst = appendFlat(dst, p, m)
		}
		return dst
	}
	if a.Key == "" {
		return dst
	}
	a.Key = prefix + a.Key
	return append(dst, a)
}
