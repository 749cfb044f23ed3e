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

/**
 * stdout, written in batches: one write(2) per 8 KiB of log lines instead of one per line
 * (a decision line per request made the log the proxy's busiest syscall), flushed at least
 * every 100 ms so a quiet proxy's lines still appear at once, and synchronously at exit.
 */
function batchedStdout(): pino.DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 8 * 1024 });
  const timer = setInterval(() => destination.flush(), 100);
  timer.unref();
  process.once('exit', () => {
    clearInterval(timer);
    try {
      destination.flushSync();
    } catch {
      // Nothing more can be done for the last lines of a dying process.
    }
  });
  return destination;
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
