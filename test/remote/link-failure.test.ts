/**
 * Replication over a real link (a veth pair into a network namespace): the link taken
 * down mid-replication moves the group to PSUE, the unsent journal folds into the dirty
 * bitmap, and once the link is back a resync ships exactly those regions; with netem
 * delay and loss the replica still converges.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startDelayProxy } from '../../src/bench/delay-proxy.js';
import { ok, useScratch } from '../cli/cli-helpers.js';
import { plexus, plexusAsync } from '../helpers/home.js';
import { canMakeLinks, makeLink, type TestLink } from './netns.js';
import { control, digest, groupDisplay, makeSites, pairV, type Sites, until } from './sites.js';

const s = useScratch();
let sites: Sites | undefined;
let link: TestLink | undefined;

afterEach(async () => {
  await sites?.cleanup();
  sites = undefined;
  link?.cleanup();
  link = undefined;
});

const display = groupDisplay;

describe.skipIf(!canMakeLinks())('replication over a real link', () => {
  async function overLink(size: string, ...createArgs: string[]): Promise<Sites> {
    link = makeLink();
    sites = makeSites(s.dir, `${link.there}:7070`);
    sites.bPrefix = link.prefix;
    return pairV(sites, size, createArgs);
  }

  it('link down mid-replication: PSUE, the unsent journal folded; link up: resync ships those regions; volumes match', async () => {
    const t = await overLink('64M', '--link-timeout', '2');
    ok(t.a, 'volume', 'write', 'v', '--random', '4M', '--seed', '31');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    await until(() => (display(t.a).durableSeq === display(t.a).lastSeq ? true : undefined), 10_000, 'durable');
    link!.down();
    // Journaled, never acknowledged: folded into the bitmap when the group suspends.
    const c = await control(t.a);
    try {
      for (let i = 0; i < 16; i++) await c.call('volume.write', { name: 'v', offset: (8 << 20) + i * (1 << 20), data: Buffer.alloc(1 << 20, i + 1) });
    } finally {
      c.close();
    }
    await until(() => (display(t.a).state === 'PSUE' ? true : undefined), 30_000, 'PSUE');
    const d = display(t.a);
    expect(d.lastError).toContain('link');
    expect(d.members[0].dirtyBytes).toBe(16 << 20);
    expect(plexus(t.a, 'sync-wait', '--group', 'g', '--timeout', '1').stdout).toMatch(/^BROKEN/);
    link!.up();
    const r = JSON.parse(ok(t.a, 'pair', 'resync', '--group', 'g', '--json').stdout);
    expect(r.bytes).toBe(16 << 20);
    expect(display(t.a).state).toBe('PAIR');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });
});

describe('replication over a long link', () => {
  // This kernel has no netem (CONFIG_NET_SCH_NETEM is not set): the delay is a proxy's.
  it('converges over 20 ms each way, shipping a window of batches per round trip', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    ok(t.a, 'volume', 'create', 'v', '--size', '64M');
    ok(t.b, 'volume', 'create', 'v', '--size', '64M');
    await t.startB();
    const proxy = await startDelayProxy(t.peer, 20);
    try {
      await t.startA();
      // The proxy runs in this process: commands must not block its event loop.
      const created = await plexusAsync(t.a, 'remote', 'pair', 'create', 'v', `${proxy.address}/v`, '--group', 'g');
      expect(created.code, created.stderr).toBe(0);
      const c = await control(t.a);
      const started = Date.now();
      try {
        for (let i = 0; i < 48; i++) await c.call('volume.write', { name: 'v', offset: i << 20, data: Buffer.alloc(1 << 20, i + 1) });
      } finally {
        c.close();
      }
      expect((await plexusAsync(t.a, 'sync-wait', '--group', 'g', '--timeout', '60')).stdout).toMatch(/^DONE/);
      // 48 records a round trip apiece would take 48 x 40 ms; the window sends them together.
      expect(Date.now() - started).toBeLessThan(48 * 40);
      expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
    } finally {
      await proxy.close();
    }
  });
});
