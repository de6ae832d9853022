package fluxauth

import (
	"context"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request's ID, which every log line of the request includes.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the ID WithRequestID stored, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
