#!/usr/bin/env node
// egress-gate command line: serve, check, validate, ca init, env (SPEC §7).
// Exit codes: 0 success / allow, 1 deny / invalid, 2 usage or config error.

import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { announceListening, joinCluster, runPrimary } from './cluster.js';
import { FileStateStore } from './state/file-store.js';
import { startAdmin } from './admin/server.js';
import { configFileFrom, formatErrors, loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { Runtime } from './runtime.js';
import { parseCheckTarget } from './proxy/check-target.js';
import { validateAll } from './validate.js';
import { caFiles, initCa } from './inspect/ca.js';
import { checkProxyUrl, envExports } from './inspect/env-exports.js';
import { existsSync } from 'node:fs';

const usage = `usage:
  egress-gate serve [--config FILE]
  egress-gate check --environment ID [--config FILE] URL|HOST[:PORT]
  egress-gate validate [--config FILE]
  egress-gate ca init [--config FILE]
  egress-gate env --proxy-url URL [--config FILE]`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function loadOrExit(flag: string | undefined): Config {
  const file = configFileFrom(flag);
  const loaded = loadConfig(file);
  if (!loaded.ok) fail(formatErrors(loaded.file, loaded.errors));
  return loaded.config;
}

function printProblems(problems: { file: string; errors: { path: string; message: string }[] }[]): void {
  for (const problem of problems) process.stderr.write(`${formatErrors(problem.file, problem.errors)}\n`);
}

async function serve(flag: string | undefined): Promise<void> {
  const config = loadOrExit(flag);
  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config.workers, (level, message, fields) => process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), service: 'egress-gate', ...fields, msg: message })}\n`), config.proxy.shutdownGraceMs);
    return;
  }
  const created = await Runtime.create(config);
  if (!created.ok) {
    printProblems(created.problems);
    process.exit(2);
  }
  const runtime = created.runtime;
  if (runtime.store instanceof FileStateStore) joinCluster(runtime.store, () => runtime.reloadState());
  const started = await runtime.start(startAdmin).catch((error: Error) => fail(`egress-gate: cannot listen: ${error.message}`));
  runtime.log.info({ proxy: `${started.proxy.host}:${started.proxy.port}`, admin: started.admin, config: config.file }, 'egress-gate listening');
  announceListening();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    runtime.log.info({ signal, graceMs: config.proxy.shutdownGraceMs }, 'draining');
    runtime.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function check(flag: string | undefined, environment: string | undefined, input: string | undefined): Promise<void> {
  if (!environment || !input) fail(usage);
  const target = parseCheckTarget(input);
  if (typeof target === 'string') fail(`egress-gate check: ${JSON.stringify(input)}: ${target}`);
  const config = loadOrExit(flag);
  const created = await Runtime.create(config, (await import('./log.js')).createLogger('silent'));
  if (!created.ok) {
    printProblems(created.problems);
    process.exit(2);
  }
  created.runtime.rebuild();
  const decision = created.runtime.check(environment, target);
  if (!decision) fail(`egress-gate check: unknown environment "${environment}"`);
  const verdict = decision.allow ? 'allow' : 'deny';
  const hostPort = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  process.stdout.write(`${verdict} ${decision.reason} ${hostPort} environment=${environment}${decision.rule ? ` rule=${decision.rule}` : ''}\n`);
  process.exit(decision.allow ? 0 : 1);
}

async function validate(flag: string | undefined): Promise<void> {
  const file = configFileFrom(flag);
  const problems = await validateAll(file);
  if (problems.length === 0) {
    process.stdout.write(`${file}: valid\n`);
    process.exit(0);
  }
  printProblems(problems);
  process.exit(1);
}

async function caInit(flag: string | undefined): Promise<void> {
  const config = loadOrExit(flag);
  const result = await initCa(config.inspection.caDir);
  if (!result.ok) fail(`egress-gate ca init: ${result.error}`, 1);
  const what = result.created ? 'created' : 'kept the existing CA';
  process.stdout.write(`egress-gate ca init: ${what}: ${result.files.cert} (key ${result.files.key}, bundle ${result.files.bundle})\n`);
}

function env(flag: string | undefined, proxyUrl: string | undefined): void {
  if (!proxyUrl) fail(usage);
  const checked = checkProxyUrl(proxyUrl);
  if (!checked.ok) fail(`egress-gate env: ${checked.error}`);
  const config = loadOrExit(flag);
  const files = caFiles(config.inspection.caDir);
  process.stdout.write(envExports(checked.url, existsSync(files.cert) && existsSync(files.bundle) ? files : undefined));
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        environment: { type: 'string' },
        'proxy-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    fail(`${(error as Error).message}\n${usage}`);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  switch (command) {
    case 'serve':
      return serve(values.config);
    case 'check':
      return check(values.config, values.environment, rest[0]);
    case 'validate':
      return validate(values.config);
    case 'ca':
      if (rest[0] !== 'init') fail(usage);
      return caInit(values.config);
    case 'env':
      return env(values.config, values['proxy-url']);
    default:
      fail(usage);
  }
}

main(process.argv.slice(2)).catch((error: Error) => fail(`egress-gate: ${error.stack ?? error.message}`, 2));
