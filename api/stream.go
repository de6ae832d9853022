package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/feed"
)

// DefaultHeartbeat is how often an idle stream sends a comment: proxies and load balancers close
// connections idle for longer than about 30-60 s, and the client learns the stream is alive.
const DefaultHeartbeat = 15 * time.Second

// streamWriteTimeout bounds each write to a stream: a client that stopped reading is cut off instead
// of holding its handler (the hub has dropped it already; this frees the connection).
const streamWriteTimeout = 10 * time.Second

// streamData is an event's SSE data line: the events list's JSON, on one line (encoding/json never
// writes a newline inside a value).
func streamData(e *fluxauth.SecurityEvent) []byte {
	b, err := json.Marshal(EventJSON(e))
	if err != nil {
		// Metadata was JSON when it was stored; this cannot happen. Keep the stream well-formed.
		b = []byte(`{"id":"` + e.ID + `","error":"unencodable"}`)
	}
	return b
}

// securityStream is the dashboard's live feed: Server-Sent Events, one "security" event per
// committed security event, its id the stream's cursor (feed.Cursor) for Last-Event-ID. It ends
// when the client goes, when it falls too far behind (the hub dropped it: it reconnects and resumes)
// or at shutdown (Feed.Close); and, since the stream outlives the request's one authentication, when
// its access token expires (on the service's clock), when its session is revoked (the token_revoked
// event the revocation committed, which the feed brings from whichever instance revoked it) and when
// its user stops being an admin (user_type_changed, after which the account is read again). The
// client reconnects with a renewed token and resumes from its Last-Event-ID.
func (s *Server) securityStream(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	ctx := r.Context()
	untilExp := p.ExpiresAt.Sub(s.Accounts.Clock.Now())
	if untilExp <= 0 {
		return fluxauth.Errorf(fluxauth.EInvalidToken, "The access token is invalid or expired.")
	}
	expiry, expired := s.Accounts.Clock.NewTimer(untilExp)
	defer expiry.Stop()
	sub, err := s.Feed.Subscribe(ctx, r.Header.Get("Last-Event-ID"))
	switch {
	case errors.Is(err, feed.ErrBadCursor):
		var v fluxauth.ValidationError
		v.Add("Last-Event-ID", "is not an id this stream sent")
		return v.Err()
	case errors.Is(err, feed.ErrClosed):
		return fluxauth.Wrap(fluxauth.EServiceUnavailable, "The service is shutting down; reconnect.", err)
	case err != nil:
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	// The server's write timeout would cut the stream: each write gets its own deadline instead.
	// (Its read timeout does not matter: net/http lifts it once the request has been read.)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on as they come
	w.WriteHeader(http.StatusOK)
	// A client that stopped reading blocks a write until its deadline; once the hub has dropped it
	// (or is closing), the write is cut short so its connection is freed at once.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-sub.Done():
			_ = rc.SetWriteDeadline(time.Now())
		case <-finished:
		}
	}()

	var buf bytes.Buffer
	write := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		if err == nil {
			err = rc.Flush()
		}
		return err
	}
	send := func(e *feed.Event, id string) error {
		buf.WriteString("id: ")
		buf.WriteString(id)
		buf.WriteString("\nevent: security\ndata: ")
		buf.Write(e.Data(streamData))
		buf.WriteString("\n\n")
		return write()
	}
	// Every way out is logged once, saying why (streamEnded).
	why, err := "client went away", error(nil)
	defer func() { s.streamEnded(ctx, sub, why, err) }()
	// A first line at once: the client's fetch resolves and knows the stream is up.
	buf.WriteString(": connected\n\n")
	if err = write(); err != nil {
		why = "write failed"
		return nil
	}
	if err = sub.CatchUp(ctx, send); err != nil {
		why = "catch-up failed"
		return nil
	}
	every := s.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sub.C():
			if !ok {
				why = "feed closed"
				return nil
			}
			if id, ok := sub.Accept(e.SecurityEvent); ok {
				if err = send(e, id); err != nil {
					why = "write failed"
					return nil
				}
			}
			if end := s.streamAuthEnded(ctx, p, e.SecurityEvent); end != "" {
				why = end
				return nil
			}
		case <-expired:
			why = "access token expired"
			return nil
		case <-heartbeat.C:
			buf.WriteString(": heartbeat\n\n")
			if err = write(); err != nil {
				why = "write failed"
				return nil
			}
		}
	}
}

// streamAuthEnded reports why the stream of p must end after the event e, or "" while it may go on:
// e ended p's session, or changed p's account's type and p is no longer an admin.
func (s *Server) streamAuthEnded(ctx context.Context, p *account.Principal, e *fluxauth.SecurityEvent) string {
	switch e.Type {
	case fluxauth.EventTokenRevoked:
		if sid, _ := e.Metadata["sessionId"].(string); sid == p.SessionID {
			return "session revoked"
		}
	case fluxauth.EventUserTypeChanged:
		if e.UserID == p.UserID {
			if err := s.Accounts.RequireAdmin(ctx, p); err != nil {
				return "no longer an admin"
			}
		}
	}
	return ""
}

// streamEnded logs why a stream ended: once the response has started, nothing can reach the client
// but the end of the stream, from which it reconnects. A stream the feed ended (Done) says whether
// its client was dropped for falling behind, whatever its last write made of it.
func (s *Server) streamEnded(ctx context.Context, sub *feed.Subscription, why string, err error) {
	select {
	case <-sub.Done():
		if sub.Dropped() {
			why = "client fell behind; dropped"
		} else {
			why = "shutting down"
		}
	default:
	}
	s.Logger.InfoContext(ctx, "security stream ended: "+why, "err", err)
}
