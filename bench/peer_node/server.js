'use strict';
/*
 * The Processor's live job on Node.js: the Node peer of issue 21 (bench/README.md, "Keeping a baseline honest").
 *
 *   node bench/peer_node/server.js --redis-url redis://127.0.0.1:6379/0 --channel telemetry:teltonika:live
 *
 * What the task card's own team would write, done well: `ws` for the WebSocket side, `ioredis` subscribed to the
 * live channel `<stream>:live` (docs/processor.md section 5), and for every batch each fan of the event gets that
 * batch's `position` frames in one socket write, in the Processor's exact bytes (section 4; checked end to end by
 * the bench). Not done, because they are not the live job: authentication, snapshots (a `subscribe` is answered
 * with an empty one), storage, corrections, metrics. Kept, because the job needs them: the sequence check (gaps are
 * counted), a bound on what a slow fan may have unsent (--buffer-limit bytes: closed with 1013, as the Processor
 * sheds a slow consumer), ping and the close handshake (ws's own).
 *
 * Why this is strong, not naive: frames are rendered and framed once per batch (not once per fan, as a
 * `ws.send(string)` loop would), and joined, so a fan costs one `socket.write`; `--write send` uses ws's public
 * `send()` per frame inside the socket's cork instead (the same one system call, more JavaScript). With
 * `--coalesce on` (the default) the messages that arrived before the event loop came round are fanned out
 * together (setImmediate), so a busy peer batches more the busier it is, as the Processor's ingest does.
 *
 * On start it prints one JSON line on stdout, {"port": N}, once it listens and is subscribed; SIGTERM ends it and
 * prints its counters on stderr.
 */

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');
const Redis = require('ioredis');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const redisUrl = option('--redis-url', 'redis://127.0.0.1:6379/0');
const channel = option('--channel', 'telemetry:teltonika:live');
const host = option('--host', '127.0.0.1');
const port = Number(option('--port', '0'));
const bufferLimit = Number(option('--buffer-limit', String(1 << 20)));
const coalesce = option('--coalesce', 'on') !== 'off';
const writeMode = option('--write', 'joined');
if (!['joined', 'send'].includes(writeMode)) throw new Error(`--write: joined or send, not ${writeMode}`);

const counters = { messages: 0, positions: 0, dispatches: 0, writes: 0, gaps: 0, shed: 0, malformed: 0, fans: 0 };
/** @type {Map<string, Set<WebSocket>>} */
const subs = new Map();
const lastSeq = new Map();

// -- the Processor's frame bytes -----------------------------------------------------------------------------

/**
 * A float as Python's repr() writes it (the Processor renders frames with Python's json module): the same shortest
 * round-trip digits as JavaScript, but an integral value keeps ".0", -0 is "-0.0", and the exponent form is used
 * below 1e-4 and from 1e16 on, written "1e-05" / "1e+16".
 */
function pyFloat(x) {
  if (!Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    const digits = String(Math.abs(e)).padStart(2, '0');
    return `${mantissa}e${e < 0 ? '-' : '+'}${digits}`;
  }
  const text = String(x);
  return Number.isInteger(x) ? `${text}.0` : text;
}

const str = (s) => (s === null ? 'null' : JSON.stringify(s));
const num = (x) => (x === null ? 'null' : pyFloat(x));
const int = (x) => (x === null ? 'null' : String(x));

/** A `position` frame (section 4, `type` first) from a live-channel position (an array in the section 5 order). */
function positionFrame(p) {
  return `{"type":"position","eventId":${str(p[0])},"entryId":${str(p[1])},"deviceId":${str(p[2])},`
    + `"ts":${str(p[3])},"lat":${num(p[4])},"lon":${num(p[5])},"altitude":${num(p[6])},"speed":${num(p[7])},`
    + `"heading":${num(p[8])},"satellites":${int(p[9])},"streamId":${str(p[10])}}`;
}

/** One unmasked text frame (RFC 6455 5.2) around a UTF-8 payload, as the header and the payload. */
function wsText(payload) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0x81, n]);
  } else if (n < 65536) {
    head = Buffer.allocUnsafe(4);
    head[0] = 0x81; head[1] = 126; head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.allocUnsafe(10);
    head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2);
  }
  return [head, payload];
}

// -- fan-out ------------------------------------------------------------------------------------------------

let pending = [];
let scheduled = false;

function onMessage(_channel, message) {
  if (!coalesce) {
    dispatch([message]);
    return;
  }
  pending.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush() {
  const messages = pending;
  pending = [];
  scheduled = false;
  dispatch(messages);
}

function dispatch(messages) {
  /** @type {Map<string, Buffer[]>} */
  const framed = new Map();
  for (const data of messages) {
    counters.messages += 1;
    const newline = data.indexOf(10);
    let positions;
    try {
      const header = JSON.parse(data.toString('utf8', 0, newline < 0 ? data.length : newline));
      const last = lastSeq.get(header.publisher);
      lastSeq.set(header.publisher, header.seq);
      if (last !== undefined && header.seq > last + 1) counters.gaps += header.seq - last - 1;
      if (subs.size === 0) continue; // nobody watches: the positions need not be decoded
      positions = JSON.parse(data.toString('utf8', newline + 1));
    } catch (err) {
      counters.malformed += 1;
      continue;
    }
    for (const p of positions) {
      if (!subs.has(p[0])) continue;
      const parts = wsText(Buffer.from(positionFrame(p), 'utf8'));
      const group = framed.get(p[0]);
      if (group === undefined) framed.set(p[0], [parts]);
      else group.push(parts);
      counters.positions += 1;
    }
  }
  for (const [eventId, frames] of framed) {
    const fans = subs.get(eventId);
    if (!fans || fans.size === 0) continue;
    counters.dispatches += 1;
    if (writeMode === 'joined') {
      const joined = Buffer.concat(frames.flat());
      for (const ws of fans) send(ws, (socket) => socket.write(joined));
    } else {
      const payloads = frames.map((parts) => parts[1]);
      for (const ws of fans) {
        send(ws, (socket) => {
          socket.cork();
          for (const payload of payloads) ws.send(payload, { binary: false });
          socket.uncork();
        });
      }
    }
  }
}

/** One write to a fan; a fan with more than --buffer-limit bytes unsent is closed with 1013. */
function send(ws, write) {
  if (ws.readyState !== WebSocket.OPEN || ws.shed) return;
  const socket = ws._socket; // ws keeps no public handle to it; writing whole frames to it is safe without compression
  if (socket.writableLength > bufferLimit) {
    ws.shed = true;
    counters.shed += 1;
    ws.close(1013, 'slow consumer');
    return;
  }
  write(socket);
  counters.writes += 1;
}

// -- the fans' side -------------------------------------------------------------------------------------------

function answer(ws, frame) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

function leave(ws, eventId) {
  const fans = subs.get(eventId);
  if (fans) {
    fans.delete(ws);
    if (fans.size === 0) subs.delete(eventId);
  }
}

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('only /live\n');
});
const wss = new WebSocketServer({ server, path: '/live', perMessageDeflate: false, maxPayload: 65536,
  clientTracking: false });

wss.on('connection', (ws) => {
  counters.fans += 1;
  ws.events = new Set();
  ws.on('message', (data, isBinary) => {
    let frame;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch (err) {
      frame = null;
    }
    const eventId = frame && typeof frame.eventId === 'string' ? frame.eventId.toLowerCase() : null;
    if (isBinary || !frame || !eventId || !['subscribe', 'unsubscribe'].includes(frame.type)) {
      answer(ws, { type: 'error', code: 'bad_request', message: 'malformed frame' });
    } else if (frame.type === 'subscribe') {
      let fans = subs.get(eventId);
      if (!fans) subs.set(eventId, (fans = new Set()));
      fans.add(ws);
      ws.events.add(eventId);
      answer(ws, { type: 'subscribed', eventId, snapshot: [] });
    } else {
      leave(ws, eventId);
      ws.events.delete(eventId);
      answer(ws, { type: 'unsubscribed', eventId });
    }
  });
  ws.on('close', () => {
    for (const eventId of ws.events) leave(ws, eventId);
    ws.events.clear();
  });
  ws.on('error', () => {}); // a fan's broken connection ends in 'close'
});

// -- start and stop -------------------------------------------------------------------------------------------

const redis = new Redis(redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: false });
redis.on('messageBuffer', onMessage);
redis.on('error', (err) => process.stderr.write(`redis: ${err.message}\n`));

const began = process.hrtime.bigint();
function stop(code) {
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  process.stderr.write(`${JSON.stringify({ ...counters, events: subs.size, seconds })}\n`);
  process.exit(code);
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));

redis.subscribe(channel).then(() => {
  server.listen(port, host, 4096, () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port, coalesce, write: writeMode,
      node: process.version })}\n`);
  });
}, (err) => {
  process.stderr.write(`cannot subscribe to ${channel}: ${err.message}\n`);
  process.exit(2);
});
