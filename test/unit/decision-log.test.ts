// The decision line is written by hand (src/log.ts) for speed: it must read exactly like the
// line pino itself writes, through the same destination and at the same level.
import { describe, expect, it } from 'vitest';
import { createDecisionWriter, createLogger } from '../../src/log.js';

function collectingLogger(level: string) {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

describe('decision lines', () => {
  const record = { environment: 'dev', session: undefined, method: 'GET', host: 'example.test', port: 80, decision: 'allow', reason: 'allowed', detail: 'a "quoted"\nvalue', limiter: { scope: 'session', remaining: 3 } };

  it('carry the same fields, in the same JSON, as a line pino writes for the record', () => {
    const { logger, lines } = collectingLogger('info');
    logger.info({ ...record }, 'decision');
    createDecisionWriter(logger)(record);
    expect(lines).toHaveLength(2);
    const [viaPino, byHand] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[1]?.endsWith('}\n')).toBe(true);
    expect(Object.keys(byHand as object).sort()).toEqual(Object.keys(viaPino as object).sort());
    expect({ ...byHand, time: 0 }).toEqual({ ...viaPino, time: 0 });
    expect(byHand).not.toHaveProperty('session');
    expect(new Date(String(byHand?.time)).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('keep a child logger\'s bindings', () => {
    const { logger, lines } = collectingLogger('info');
    createDecisionWriter(logger.child({ worker: 3 }))(record);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ worker: 3, service: 'egress-gate', msg: 'decision', host: 'example.test' });
  });

  it('are not written below the info level', () => {
    const { logger, lines } = collectingLogger('warn');
    createDecisionWriter(logger)(record);
    expect(lines).toEqual([]);
  });
});
