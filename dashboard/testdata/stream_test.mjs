// Unit tests of the page's Server-Sent Events parser, run by TestStreamParser with node's test
// runner: the browser test sees the stream work, these pin down the framing a network can produce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEParser } from '../static/js/stream.js';

const event = { id: '0190b3c4-0000-7000-8000-000000000001', eventType: 'failed_login', severity: 'warning' };
const stream = `: heartbeat\n\nid: 41\nevent: security\ndata: ${JSON.stringify(event)}\n\n: heartbeat\n\n` +
  'id: 42\nevent: security\ndata: {"id":"b",\ndata: "eventType":"signup"}\n\n';
const want = [
  { id: '41', event: 'security', data: JSON.stringify(event), hasData: true },
  { id: '42', event: 'security', data: '{"id":"b",\n"eventType":"signup"}', hasData: true },
];

const parseAll = (...chunks) => {
  const p = new SSEParser();
  return chunks.flatMap((c) => p.push(c));
};

test('whole messages, heartbeats skipped, data lines joined', () => {
  assert.deepEqual(parseAll(stream), want);
});

for (const [name, nl] of [['LF', '\n'], ['CRLF', '\r\n'], ['CR', '\r']]) {
  test(`a chunk boundary anywhere, ${name} line endings`, () => {
    const s = stream.replaceAll('\n', nl);
    for (let i = 0; i <= s.length; i++) {
      assert.deepEqual(parseAll(s.slice(0, i), s.slice(i)), want, `cut at ${i}: ${JSON.stringify(s.slice(0, i))}`);
    }
  });
}

test('one character at a time', () => {
  assert.deepEqual(parseAll(...stream.replaceAll('\n', '\r\n')), want);
});

test('a message without data still moves the resume point', () => {
  assert.deepEqual(parseAll('id: 43\n\n'), [{ id: '43', event: 'message', data: '', hasData: false }]);
});

test('an unfinished message waits for its blank line', () => {
  const p = new SSEParser();
  assert.deepEqual(p.push('id: 44\nevent: security\ndata: {}\n'), []);
  assert.deepEqual(p.push('\n'), [{ id: '44', event: 'security', data: '{}', hasData: true }]);
});

test('no space after the colon, and unknown fields ignored', () => {
  assert.deepEqual(parseAll('retry: 100\nid:45\nevent:security\ndata:{}\n\n'),
    [{ id: '45', event: 'security', data: '{}', hasData: true }]);
});
