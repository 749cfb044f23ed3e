// Environments and sessions on disk under stateDir, mirrored in memory.
//   stateDir/environments/<id>.yaml   policies (written by the API, or by hand)
//   stateDir/sessions/<id>.json       sessions (token kept as a hash only)
// Writes are atomic and durable (atomic.ts) and serialised per file, so concurrent PUTs to one
// environment land in the order they were acknowledged and a crash leaves a prefix of them.

import { EventEmitter } from 'node:events';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { validateEnvironment } from '../policy/environment.js';
import type { EnvironmentPolicy } from '../policy/types.js';
import { removeFileDurably, removeRetired, writeFileAtomic } from './atomic.js';
import { KeyedQueue } from './keyed-queue.js';
import { PolicyFileText } from './policy-file-text.js';
import { parseSessionFile, type Session } from './sessions.js';

import type { FileProblem, LoadReport, StateStore } from './store.js';

export type { FileProblem, LoadReport } from './store.js';

const environmentFile = /^([a-z0-9_-]{1,64})\.(ya?ml|json)$/;

export class FileStateStore extends EventEmitter implements StateStore {
  readonly environmentsDir: string;
  readonly sessionsDir: string;
  /** Environments from the config file: the base layer that files in stateDir override. */
  private configured: Map<string, EnvironmentPolicy>;
  private fromFiles = new Map<string, EnvironmentPolicy>();
  private sessions = new Map<string, Session>();
  private writes = new KeyedQueue();
  private fileText = new PolicyFileText();
  /**
   * Awaited after every write before it is acknowledged: with several worker processes, the
   * cluster makes every other worker re-read first, so an acknowledged write holds everywhere.
   */
  afterWrite: () => Promise<void> = async () => {};
  /** Bumped by every write, so a re-read that raced a write does not put back what it replaced. */
  private generation = 0;
  /** Re-reads under way (by the generation they started at), and what was written meanwhile. */
  private readsInFlight = new Set<{ startedAt: number }>();
  private writtenDuringRead = new Map<string, number>();

  constructor(readonly stateDir: string, configured: EnvironmentPolicy[] = []) {
    super();
    this.environmentsDir = join(stateDir, 'environments');
    this.sessionsDir = join(stateDir, 'sessions');
    this.configured = new Map(configured.map((p) => [p.id, p]));
  }

  /**
   * Reads every file. A file that does not parse or validate is reported and its last good
   * version (if this process had one) stays in force: a typo never opens or closes the gates.
   */
  async load(): Promise<LoadReport> {
    const read = { startedAt: this.generation };
    this.readsInFlight.add(read);
    try {
      const found = await this.readAll();
      // A write acknowledged while the folder was being read is newer than what the read saw
      // (it may have read the file just before the rename): memory keeps the acknowledged state,
      // so a re-read never revives a revoked session or undoes a PUT. Retrying the read instead
      // can starve under a steady stream of writes.
      for (const [key, generation] of this.writtenDuringRead) {
        if (generation <= read.startedAt) continue;
        const id = key.slice(key.indexOf(':') + 1);
        if (key.startsWith('env:')) keepWritten(found.environments, this.fromFiles, id);
        else keepWritten(found.sessions, this.sessions, id);
      }
      this.fromFiles = found.environments;
      this.sessions = found.sessions;
      this.emit('change');
      return { environments: this.listEnvironments(true).length, sessions: found.sessions.size, problems: found.problems };
    } finally {
      this.readsInFlight.delete(read);
      const oldest = Math.min(...[...this.readsInFlight].map((r) => r.startedAt));
      for (const [key, generation] of this.writtenDuringRead) if (generation <= oldest || this.readsInFlight.size === 0) this.writtenDuringRead.delete(key);
    }
  }

  /** Every acknowledged write goes through here, after memory was updated. */
  private written(key: string): void {
    this.generation++;
    if (this.readsInFlight.size > 0) this.writtenDuringRead.set(key, this.generation);
  }

  private async readAll(): Promise<{ environments: Map<string, EnvironmentPolicy>; sessions: Map<string, Session>; problems: FileProblem[] }> {
    await mkdir(this.environmentsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.sessionsDir, { recursive: true, mode: 0o700 });
    const problems: FileProblem[] = [];
    const environments = new Map<string, EnvironmentPolicy>();
    const names = (await readdir(this.environmentsDir)).sort();
    removeRetired(this.environmentsDir, names);
    const present = new Set(names.map((name) => join(this.environmentsDir, name)));
    for (const file of this.parsed.keys()) if (!present.has(file)) this.parsed.delete(file);
    for (const name of names) {
      const match = environmentFile.exec(name);
      if (!match) continue;
      const id = match[1] as string;
      const file = join(this.environmentsDir, name);
      const result = await this.readCached(file, id);
      if (result.ok) {
        environments.set(id, result.value);
      } else {
        problems.push({ file, errors: result.errors });
        const previous = this.fromFiles.get(id);
        if (previous) environments.set(id, previous);
      }
    }
    const sessions = new Map<string, Session>();
    const sessionNames = await readdir(this.sessionsDir);
    removeRetired(this.sessionsDir, sessionNames);
    for (const name of sessionNames) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const file = join(this.sessionsDir, name);
      try {
        const parsed = parseSessionFile(JSON.parse(await readFile(file, 'utf8')));
        if (typeof parsed === 'string') problems.push({ file, errors: [{ path: '(session)', message: parsed }] });
        else sessions.set(parsed.id, parsed);
      } catch (error) {
        problems.push({ file, errors: [{ path: '(file)', message: (error as Error).message }] });
      }
    }
    return { environments, sessions, problems };
  }

  replaceConfigured(policies: EnvironmentPolicy[]): void {
    this.configured = new Map(policies.map((p) => [p.id, p]));
  }

  listEnvironments(includeArchived: boolean): EnvironmentPolicy[] {
    const merged = new Map(this.configured);
    for (const [id, policy] of this.fromFiles) merged.set(id, policy);
    return [...merged.values()].filter((p) => includeArchived || !p.archived).sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Parsed files by name, valid while size and modification time are unchanged: a re-read after
   * one hand edit (or after the folder watch sees our own write) parses only what changed.
   */
  private parsed = new Map<string, { size: number; mtimeMs: number; result: Awaited<ReturnType<typeof readEnvironmentFile>> }>();

  private async readCached(file: string, id: string): Promise<Awaited<ReturnType<typeof readEnvironmentFile>>> {
    const info = await stat(file).catch(() => undefined);
    const cached = this.parsed.get(file);
    if (info && cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs) return cached.result;
    const result = await readEnvironmentFile(file, id, this.fromFiles.get(id));
    if (info) this.parsed.set(file, { size: info.size, mtimeMs: info.mtimeMs, result });
    return result;
  }

  /**
   * Whether any of these files of environments/ differs from what this process last read or
   * wrote. The folder watch sees this process's own writes too; re-reading the whole state for
   * each of them would scan every session file per API write and count reloads that changed nothing.
   */
  async changedOnDisk(names: string[]): Promise<boolean> {
    for (const name of names) {
      if (!environmentFile.test(name)) continue;
      const file = join(this.environmentsDir, name);
      const info = await stat(file).catch(() => undefined);
      const known = this.parsed.get(file);
      if (!info ? known !== undefined : !known || known.size !== info.size || known.mtimeMs !== info.mtimeMs) return true;
    }
    return false;
  }

  getEnvironment(id: string): EnvironmentPolicy | undefined {
    return this.fromFiles.get(id) ?? this.configured.get(id);
  }

  /**
   * The policy is in force at once, before its file is durable: a change (a revocation above all)
   * does not wait on the disk, whose fsync of a 3.3 MB list took 10-580 ms on a busy machine
   * (docs/performance.md). Resolves once the file is durable; if the write fails, the version it
   * replaced is put back in force and the error goes to the caller, so what memory holds after an
   * answer is what the disk holds.
   */
  putEnvironment(policy: EnvironmentPolicy, inForce?: () => void): Promise<void> {
    return this.writes.run(`env:${policy.id}`, async () => {
      // JSON is YAML, and writes a 100 000-entry policy in milliseconds where a YAML emitter takes
      // most of a second; hand-written files stay YAML.
      const file = join(this.environmentsDir, `${policy.id}.yaml`);
      const before = this.getEnvironment(policy.id);
      const replaced = this.fromFiles.get(policy.id);
      try {
        this.showEnvironment(policy.id, policy);
        inForce?.();
        const { size, mtimeMs } = await writeFileAtomic(file, this.fileText.of(policy, before));
        this.parsed.set(file, { size, mtimeMs, result: { ok: true, value: policy } });
      } catch (error) {
        // Unless a re-read of the folder has replaced it meanwhile (the file it read is the truth).
        if (this.fromFiles.get(policy.id) === policy) this.showEnvironment(policy.id, replaced);
        throw error;
      }
      // A hand-written .yml/.json of the same id would shadow this write on the next load.
      for (const ext of ['yml', 'json']) await this.removeEnvironmentFile(`${policy.id}.${ext}`);
      await this.afterWrite();
    });
  }

  /** `policy` in force (or, when undefined, the file's version gone): the runtime rebuilds on 'change'. */
  private showEnvironment(id: string, policy: EnvironmentPolicy | undefined): void {
    if (policy) this.fromFiles.set(id, policy);
    else this.fromFiles.delete(id);
    this.emit('change');
    this.written(`env:${id}`);
  }

  deleteEnvironment(id: string): Promise<boolean> {
    return this.writes.run(`env:${id}`, async () => {
      let removed = false;
      for (const ext of ['yaml', 'yml', 'json']) removed = (await this.removeEnvironmentFile(`${id}.${ext}`)) || removed;
      const known = this.fromFiles.delete(id) || this.configured.delete(id) || removed;
      if (known) this.emit('change');
      this.written(`env:${id}`);
      await this.afterWrite();
      return known;
    });
  }

  private async removeEnvironmentFile(name: string): Promise<boolean> {
    const file = join(this.environmentsDir, name);
    this.parsed.delete(file);
    return removeFileDurably(file);
  }

  getSession(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  listSessions(): Session[] {
    return [...this.sessions.values()];
  }

  putSession(session: Session): Promise<void> {
    return this.writes.run(`session:${session.id}`, async () => {
      await writeFileAtomic(join(this.sessionsDir, `${session.id}.json`), `${JSON.stringify(session, null, 2)}\n`);
      this.sessions.set(session.id, session);
      this.emit('change');
      this.written(`session:${session.id}`);
      await this.afterWrite();
    });
  }

  deleteSession(id: string): Promise<boolean> {
    return this.writes.run(`session:${id}`, async () => {
      const removed = await removeFileDurably(join(this.sessionsDir, `${id}.json`));
      const known = this.sessions.delete(id) || removed;
      if (known) this.emit('change');
      this.written(`session:${id}`);
      await this.afterWrite();
      return known;
    });
  }

  async close(): Promise<void> {
    await this.writes.idle();
  }


}

export async function readEnvironmentFile(
  file: string,
  id: string,
  previous?: EnvironmentPolicy,
): Promise<{ ok: true; value: EnvironmentPolicy } | { ok: false; errors: { path: string; message: string }[] }> {
  let raw: unknown;
  try {
    const text = await readFile(file, 'utf8');
    // Files the API wrote are JSON: parsed natively, ten times faster than through YAML.
    raw = text.trimStart().startsWith('{') ? parseJsonOrYaml(text) : parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    return { ok: false, errors: [{ path: '(yaml)', message: ((error as Error).message.split('\n')[0] ?? 'unreadable') }] };
  }
  return validateEnvironment(raw, id, previous);
}

/** JSON when it is JSON; YAML (a superset) otherwise, for its error messages and flow style. */
function parseJsonOrYaml(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return parseYaml(text, { uniqueKeys: true });
  }
}

function keepWritten<T>(found: Map<string, T>, memory: Map<string, T>, id: string): void {
  const value = memory.get(id);
  if (value === undefined) found.delete(id);
  else found.set(id, value);
}
