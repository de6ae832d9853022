// The live feed's connection: Server-Sent Events read through fetch streaming, because EventSource
// cannot send the Authorization header and a token must never go in a URL. It resumes with
// Last-Event-ID after a drop; the server re-sends a short window behind that id, so callers dedupe
// events by their "id".
import { authedFetch } from './api.js';

// The server sends a heartbeat every 15 s; silence for longer than this means the connection is dead
// even if no error surfaced (a proxy holding a half-open socket).
const SILENCE_MS = 40000;
const MAX_BACKOFF_MS = 15000;

// SSEParser turns the stream's text, in chunks cut anywhere (even inside a line or between \r and
// \n), into its messages: {id, event, data, hasData}, the data lines joined by \n. Comments
// (heartbeats) yield nothing; a message with an id but no data is still yielded, because its id
// moves the point a resume starts from.
export class SSEParser {
  constructor() {
    this.buf = '';
    this.afterCR = false; // the last chunk ended in \r: a \n opening the next one belongs to it
    this.reset();
  }

  reset() {
    this.msg = { id: null, event: '', data: [] };
  }

  push(text) {
    const out = [];
    if (text === '') return out;
    if (this.afterCR && text.startsWith('\n')) text = text.slice(1);
    this.afterCR = text.endsWith('\r');
    this.buf += text;
    let nl;
    while ((nl = this.buf.search(/[\r\n]/)) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        const m = this.msg;
        this.reset();
        if (m.data.length > 0 || m.id !== null) out.push({ id: m.id, event: m.event || 'message', data: m.data.join('\n'), hasData: m.data.length > 0 });
        continue;
      }
      // A comment (": heartbeat") has an empty field name, ignored like any unknown field.
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'id' && !v.includes('\0')) this.msg.id = v;
      else if (field === 'event') this.msg.event = v;
      else if (field === 'data') this.msg.data.push(v);
    }
    return out;
  }
}

// openStream calls onEvent(event) for every security event and onStatus(state, detail) as the
// connection changes ("live", "reconnecting", "stopped"). resumeFrom is the seq of the newest event
// the page already has: the first connection resumes after it, so nothing committed between that
// list and the stream is missed. It returns a function that closes the stream.
export function openStream(onEvent, onStatus, resumeFrom = '') {
  let lastId = resumeFrom;
  let stopped = false;
  let controller = null;
  let backoff = 1000;
  let watchdog = 0;

  const feed = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller && controller.abort(), SILENCE_MS);
  };

  async function connect() {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    feed();
    const res = await authedFetch('/api/admin/security/stream', { headers, signal: controller.signal });
    if (!res.ok) {
      const err = new Error('stream answered ' + res.status);
      err.status = res.status;
      throw err;
    }
    onStatus('live');
    backoff = 1000;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SSEParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      feed();
      for (const ev of parser.push(value)) dispatch(ev);
    }
  }

  function dispatch(ev) {
    if (ev.id !== null) lastId = ev.id;
    if (!ev.hasData || ev.event !== 'security') return;
    let parsed;
    try {
      parsed = JSON.parse(ev.data);
    } catch {
      return;
    }
    onEvent(parsed);
  }

  (async () => {
    while (!stopped) {
      try {
        await connect();
      } catch (err) {
        if (stopped) break;
        // 401 after a refresh, or 403: the session has ended and the page is leaving.
        if (err && (err.status === 401 || err.status === 403)) {
          onStatus('stopped');
          break;
        }
        // A Last-Event-ID the server refuses (its log was reset, say) would be refused for ever:
        // start again from now.
        if (err && (err.status === 400 || err.status === 422)) lastId = '';
      }
      if (stopped) break;
      onStatus('reconnecting', Math.round(backoff / 1000));
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
    clearTimeout(watchdog);
  })();

  return () => {
    stopped = true;
    clearTimeout(watchdog);
    if (controller) controller.abort();
  };
}
