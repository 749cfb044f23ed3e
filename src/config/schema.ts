// A small declarative schema for the config file: every key has a type and a safe default,
// unknown keys are errors, and every error carries its key path. Kept local (not JSON Schema)
// so that messages read like an operator's checklist, not like a validator's internals.

export interface ConfigError {
  path: string;
  message: string;
}

type Leaf =
  | { kind: 'string'; default: string; allowEmpty?: boolean }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'integer'; default: number; min: number; max: number }
  | { kind: 'enum'; default: string; values: readonly string[] }
  | { kind: 'listen'; default: string }
  | { kind: 'stringArray'; default: string[]; check?: (value: string) => string | null }
  | { kind: 'stringMap'; default: Record<string, string>; check?: (key: string, value: string) => string | null }
  | { kind: 'array'; default: unknown[] };

export type Schema = { [key: string]: Leaf | Schema };

function isLeaf(node: Leaf | Schema): node is Leaf {
  return typeof (node as Leaf).kind === 'string';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : JSON.stringify(value);

/** "host:port" or "[v6]:port". Returns the error message, or null when valid. */
export function parseListen(value: string): { host: string; port: number } | string {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  if (!match) return `expected "host:port" (e.g. "127.0.0.1:3128"), got ${JSON.stringify(value)}`;
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  return { host: (match[1] ?? match[2]) as string, port };
}

function checkLeaf(leaf: Leaf, value: unknown, path: string, errors: ConfigError[]): unknown {
  const fail = (expected: string): undefined => {
    errors.push({ path, message: `expected ${expected}, got ${describe(value)}` });
    return undefined;
  };
  switch (leaf.kind) {
    case 'string':
      if (typeof value !== 'string') return fail('a string');
      if (!leaf.allowEmpty && value === '') return fail('a non-empty string');
      return value;
    case 'boolean':
      return typeof value === 'boolean' ? value : fail('true or false');
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < leaf.min || value > leaf.max) {
        return fail(`an integer from ${leaf.min} to ${leaf.max}`);
      }
      return value;
    case 'enum':
      return typeof value === 'string' && leaf.values.includes(value) ? value : fail(`one of ${leaf.values.join(', ')}`);
    case 'listen': {
      if (typeof value !== 'string') return fail('"host:port"');
      const parsed = parseListen(value);
      if (typeof parsed === 'string') {
        errors.push({ path, message: parsed });
        return undefined;
      }
      return parsed;
    }
    case 'stringArray': {
      if (!Array.isArray(value)) return fail('a list of strings');
      value.forEach((item, index) => {
        if (typeof item !== 'string') {
          errors.push({ path: `${path}[${index}]`, message: `expected a string, got ${describe(item)}` });
          return;
        }
        const problem = leaf.check?.(item);
        if (problem) errors.push({ path: `${path}[${index}]`, message: problem });
      });
      return value;
    }
    case 'stringMap': {
      if (!isPlainObject(value)) return fail('a mapping of strings');
      for (const [key, item] of Object.entries(value)) {
        if (typeof item !== 'string') {
          errors.push({ path: `${path}.${key}`, message: `expected a string, got ${describe(item)}` });
          continue;
        }
        const problem = leaf.check?.(key, item);
        if (problem) errors.push({ path: `${path}.${key}`, message: problem });
      }
      return value;
    }
    case 'array':
      return Array.isArray(value) ? value : fail('a list');
  }
}

/** Walks `input` along `schema`, filling defaults. Returns the result and every error found. */
export function applySchema(schema: Schema, input: unknown, path = ''): { value: Record<string, unknown>; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  const value = walk(schema, input, path, errors);
  return { value, errors };
}

function walk(schema: Schema, input: unknown, path: string, errors: ConfigError[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let source: Record<string, unknown> = {};
  if (input === undefined || input === null) {
    source = {};
  } else if (!isPlainObject(input)) {
    errors.push({ path: path || '(top level)', message: `expected a mapping, got ${describe(input)}` });
  } else {
    source = input;
  }
  for (const key of Object.keys(source)) {
    if (!(key in schema)) {
      errors.push({ path: path ? `${path}.${key}` : key, message: `unknown key (expected one of: ${Object.keys(schema).join(', ')})` });
    }
  }
  for (const [key, node] of Object.entries(schema)) {
    const childPath = path ? `${path}.${key}` : key;
    if (isLeaf(node)) {
      const raw = source[key];
      if (raw === undefined) {
        out[key] = node.kind === 'listen' ? parseListen(node.default) : structuredClone(node.default);
      } else {
        const checked = checkLeaf(node, raw, childPath, errors);
        out[key] = checked;
      }
    } else {
      out[key] = walk(node, source[key], childPath, errors);
    }
  }
  return out;
}
