// The deployment files cannot rot: every manifest parses, the configs they carry pass the
// same validation `serve` applies, and the probes point at the real health route.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { repoRoot } from '../helpers/gate.js';

const deploy = (path: string): string => readFileSync(join(repoRoot, 'deploy', path), 'utf8');

describe('deploy/', () => {
  it('Kubernetes manifests parse and carry a valid egress-gate config', () => {
    const docs = parseAllDocuments(deploy('kubernetes/egress-gate.yaml')).map((d) => d.toJS() as Record<string, any>);
    const kinds = docs.map((d) => d.kind);
    expect(kinds).toEqual(expect.arrayContaining(['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget']));
    const configMap = docs.find((d) => d.kind === 'ConfigMap')!;
    const loaded = parseConfig(configMap.data['egress.yaml'], 'configmap', {});
    expect(loaded.ok && loaded.config.store.backend).toBe('redis');
    const deployment = docs.find((d) => d.kind === 'Deployment')!;
    const container = deployment.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/healthz');
    expect(parseAllDocuments(deploy('kubernetes/redis.yaml')).map((d) => (d.toJS() as { kind: string }).kind)).toEqual(['StatefulSet', 'Service']);
  });

  it('the compose file runs two replicas on Redis with a valid config, scraped by Prometheus', () => {
    const compose = parseAllDocuments(deploy('docker-compose.yaml'))[0]!.toJS() as Record<string, any>;
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['redis', 'egress-gate-a', 'egress-gate-b', 'prometheus']));
    const loaded = parseConfig(deploy('egress-compose.yaml'), 'egress-compose.yaml', {});
    expect(loaded.ok).toBe(true);
    const prometheus = parseAllDocuments(deploy('prometheus.yaml'))[0]!.toJS() as Record<string, any>;
    expect(prometheus.scrape_configs[0].static_configs[0].targets).toHaveLength(2);
  });

  it('the Docker image config validates', () => {
    const loaded = parseConfig(readFileSync(join(repoRoot, 'config/docker.yaml'), 'utf8'), 'docker.yaml', {});
    expect(loaded.ok).toBe(true);
  });
});
