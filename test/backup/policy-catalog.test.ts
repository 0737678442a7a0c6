/**
 * The policy queries on a synthetic catalog of years of jobs (10^3 jobs, 10^5 segments;
 * src/bench/catalog-scale.ts), half of them expired by a policy: claiming runs (run by
 * the agent every minute), the throughput, retention and freeing cartridges find their
 * rows through indexes (EXPLAIN QUERY PLAN), not by scanning jobs, locations or segments.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSyntheticCatalog, fullScans, recordQueries } from '../../src/bench/catalog-scale.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let catalog: Catalog;

beforeAll(() => {
  scratch = scratchDir();
  const syn = buildSyntheticCatalog(path.join(scratch.dir, 'catalog.db'), { jobs: 1000, segments: 100_000, cartridges: 120 });
  catalog = Catalog.openFile(syn.file);
  catalog.addPolicy({ name: 'nightly', volumes: ['vol1', 'vol2'], everyS: 86_400, window: '01:00-05:00', library: 'lib-100', mode: 'single', streams: null, keep: 2, enabled: true });
  // Every other job a done run of the policy; the older half of all jobs expired.
  const run = catalog.db.prepare(`INSERT INTO policy_runs (policy, volume, slot, started_at, ended_at, library, drives, status, job_id) VALUES ('nightly', ?, ?, ?, ?, 'lib-100', 1, 'done', ?)`);
  for (let j = 1; j <= 1000; j++) {
    const t = new Date(Date.UTC(2020, 0, 1) + j * 3_600_000).toISOString();
    if (j % 2 === 0) run.run(j % 4 === 0 ? 'vol1' : 'vol2', t, t, t, j);
    if (j < 500) catalog.expireJob(j, t);
  }
});
afterAll(() => {
  catalog.close();
  scratch.cleanup();
});

/** The full scans of what `fn` runs (a scan of the expired jobs' partial index is the point of it). */
function scans(fn: () => unknown): string[] {
  return fullScans(recordQueries(catalog, fn).queries).filter((s) => !s.startsWith('SCAN j USING INDEX jobs_expired'));
}

describe('policy queries at scale', () => {
  it('claiming runs: the last runs, the running ones, the drives other jobs hold', () => {
    const policies = catalog.policies();
    expect(
      scans(() =>
        catalog.claimPolicyRuns(() => {
          catalog.lastPolicyRuns(policies);
          catalog.drivesHeldByOtherJobs('lib-100');
          return [];
        }, new Date().toISOString()),
      ),
    ).toEqual([]);
  });

  it('the throughput, the jobs retention looks at, the cartridges it may free', () => {
    expect(scans(() => catalog.recentJobRates('lib-100', 10))).toEqual([]);
    expect(scans(() => catalog.policyJobs('nightly', 'vol1'))).toEqual([]);
    let freeable: ReturnType<Catalog['expiredCartridges']> = [];
    expect(scans(() => (freeable = catalog.expiredCartridges()))).toEqual([]);
    expect(freeable.length).toBeGreaterThan(0);
    expect(scans(() => catalog.expiredCartridges(freeable[0]!.barcode))).toEqual([]);
  });
});
