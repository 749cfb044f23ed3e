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

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ sync: false })): Logger {
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
