// pino JSON lines on stdout. Asynchronous destination: a decision record must not cost the
// request path a write(2). Secrets are never passed to the logger on purpose; the redact
// list is the second fence for anything that slips through (a header object, a token field).

import pino, { type Logger } from 'pino';

export type { Logger };

export const redactPaths = [
  'token',
  '*.token',
  'authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
];

const MAX_PENDING_BYTES = 64 * 1024 * 1024;

/**
 * stdout, written in batches: one write(2) per 64 KiB of log lines instead of one per line
 * (a decision line per request made the log the proxy's busiest syscall), flushed at least
 * every 100 ms so a quiet proxy's lines still appear at once, and synchronously at exit.
 * Each batch is a trip through libuv's thread pool and back; at 8 KiB, 500 trips a second at
 * 13 000 requests/s, the decision log cost 2-19 µs of CPU per forwarded request in five runs,
 * at 64 KiB 1-5 in three (bench/cpu.js's method, against egress-gate at log level warn).
 *
 * The lines are gathered here, in an array joined once per batch, and not by sonic-boom's
 * `minLength`: sonic-boom measures the byte length of its pending string on every write,
 * which flattens it each time, and cost a forwarded request about 9 KB of garbage.
 */
function batchedStdout(): pino.DestinationStream {
  // While every core is busy, lines are made faster than the write thread is scheduled to
  // write them, and they wait in memory (15 MB seen at 5 000 requests/s on two cores). Past
  // MAX_PENDING_BYTES (a reader that has stopped) they are dropped rather than let grow, and
  // stderr says how many, at most every ten seconds.
  const destination = pino.destination({ dest: 1, sync: false, maxLength: MAX_PENDING_BYTES });
  let dropped = 0;
  let lastWarning = 0;
  destination.on('drop', (batch: string) => {
    dropped += batch.split('\n').length - 1;
    if (Date.now() - lastWarning < 10_000) return;
    lastWarning = Date.now();
    process.stderr.write(`egress-gate: ${dropped} log lines dropped so far: stdout is not being read\n`);
  });
  const batchBytes = 64 * 1024;
  let lines: string[] = [];
  let pending = 0;
  const flush = (): void => {
    if (lines.length === 0) return;
    const batch = lines.join('');
    lines = [];
    pending = 0;
    destination.write(batch);
  };
  const timer = setInterval(flush, 100);
  timer.unref();
  process.once('exit', () => {
    clearInterval(timer);
    try {
      flush();
      destination.flushSync();
    } catch {
      // Nothing more can be done for the last lines of a dying process.
    }
  });
  return {
    write(line: string): void {
      lines.push(line);
      // Characters, not bytes: a batch boundary needs no precision.
      pending += line.length;
      if (pending >= batchBytes) flush();
    },
  };
}

export function createLogger(level: string, destination: pino.DestinationStream = batchedStdout()): Logger {
  return pino(
    {
      level,
      base: { service: 'egress-gate', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * One JSON line per proxy decision, written straight to the logger's destination in the same
 * shape pino gives every other line. pino's generic path (redaction, serializers, hooks)
 * was the largest single cost of a forwarded request; a decision record is flat, its fields
 * are fixed by the proxy, and none of them can hold a credential (the record has no token or
 * header fields), so it needs none of that.
 */
export function createDecisionWriter(logger: Logger): (record: object) => void {
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym] as { write(line: string): void };
  const bindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
  // Formatting the time is a third of a line's cost; at thousands of lines a second most
  // share their millisecond with the one before.
  let lastMs = 0;
  let lastTime = '';
  return (record) => {
    if (!logger.isLevelEnabled('info')) return;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    // V8's serialiser drops undefined fields, as pino does; only the braces are replaced.
    const fields = JSON.stringify(record);
    const body = fields.length > 2 ? `,${fields.slice(1, -1)}` : '';
    stream.write(`{"level":"info","time":"${lastTime}"${bindings}${body},"msg":"decision"}\n`);
  };
}
