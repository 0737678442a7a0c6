/**
 * Synchronous replication, takeover at the remote site and the reverse resync back
 * (issue 12; 003 Fig. 4), and a resync that converges while writes go on.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { killAgent } from '../agent/agent-helpers.js';
import { ok, useScratch } from '../cli/cli-helpers.js';
import { plexusAsync } from '../helpers/home.js';
import { control, digest, groupDisplay, makeSites, pairV, type Sites, until, volumeFile } from './sites.js';

const s = useScratch();
let sites: Sites | undefined;

afterEach(async () => {
  await sites?.cleanup();
  sites = undefined;
});

const display = groupDisplay;

async function paired(size: string, ...createArgs: string[]): Promise<Sites> {
  sites = makeSites(s.dir);
  return pairV(sites, size, createArgs);
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe('synchronous mode and takeover', () => {
  it('synchronous: every acknowledged write is already applied at the remote (checked with the remote stopped)', async () => {
    const t = await paired('16M', '--sync');
    expect(display(t.a).mode).toBe('sync');
    const c = await control(t.a);
    try {
      for (let i = 0; i < 8; i++) {
        const data = Buffer.alloc(64 * 1024, 0x30 + i);
        await c.call('volume.write', { name: 'v', offset: i * 1024 * 1024, data });
        // Frozen right after the acknowledgement: whatever it holds now, it held then.
        process.kill(t.agentB!.pid, 'SIGSTOP');
        try {
          expect(readAt(volumeFile(t.b, 'v'), i * 1024 * 1024, data.length).equals(data)).toBe(true);
        } finally {
          process.kill(t.agentB!.pid, 'SIGCONT');
        }
      }
      // Switched to asynchronous and back, the same pair carries on.
      ok(t.a, 'remote', 'pair', 'mode', '--group', 'g', '--async');
      expect(display(t.a).mode).toBe('async');
      ok(t.a, 'remote', 'pair', 'mode', '--group', 'g', '--sync');
      await c.call('volume.write', { name: 'v', offset: 12 << 20, data: Buffer.alloc(4096, 0x77) });
      expect(readAt(volumeFile(t.b, 'v'), 12 << 20, 4096).equals(Buffer.alloc(4096, 0x77))).toBe(true);
    } finally {
      c.close();
    }
  });

  it('takes over at the remote when the primary site is lost, and the reverse resync ships only what changed since', async () => {
    const t = await paired('32M', '--link-timeout', '2');
    ok(t.a, 'volume', 'write', 'v', '--random', '8M', '--seed', '11');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    await until(() => (display(t.a).durableSeq === display(t.a).lastSeq ? true : undefined), 10_000, 'durable');
    const acknowledged = digest(t.a, 'v');
    await killAgent(t.agentA!);
    // The primary site is gone: the remote takes over and carries on writing.
    const over = JSON.parse(ok(t.b, 'remote', 'takeover', '--group', 'g', '--json').stdout);
    expect(over.divergedAt).toBeGreaterThan(0);
    expect(digest(t.b, 'v')).toBe(acknowledged);
    ok(t.b, 'volume', 'write', 'v', '--offset', '4M', '--random', '1M', '--seed', '12');
    ok(t.b, 'volume', 'write', 'v', '--offset', '20M', '--random', '256K', '--seed', '13');
    const atB = digest(t.b, 'v');
    // The old primary returns: the remote is refused as a target of its journal (PSUE).
    await t.startA();
    await until(() => (display(t.a).state === 'PSUE' ? true : undefined), 20_000, 'PSUE after the takeover');
    expect(display(t.a).lastError).toContain('took group g over');
    const r = JSON.parse(ok(t.a, 'pair', 'resync', '--group', 'g', '--reverse', '--json').stdout);
    expect(r.bytes).toBe((1024 + 256) * 1024);
    expect(digest(t.a, 'v')).toBe(atB);
    expect(display(t.a)).toMatchObject({ state: 'PAIR', epoch: 2 });
    // Replicating from the old primary again; the remote is fenced again.
    expect(JSON.parse(ok(t.b, 'remote', 'status', '--json').stdout).targets[0].state).toBe('SECONDARY');
    ok(t.a, 'volume', 'write', 'v', '--offset', '1M', '--random', '1M', '--seed', '14');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('converges a resync while the application keeps writing; its progress never goes backwards', async () => {
    const t = await paired('64M');
    ok(t.a, 'pair', 'split', '--group', 'g');
    ok(t.a, 'volume', 'write', 'v', '--random', '64M', '--seed', '15');
    const writer = (async () => {
      const c = await control(t.a);
      let n = 0;
      try {
        while (!stop) {
          await c.call('volume.write', { name: 'v', offset: ((n * 7919) % 16_000) * 4096, data: Buffer.alloc(4096, n % 256) });
          n++;
        }
      } finally {
        c.close();
      }
      return n;
    })();
    let stop = false;
    const resync = plexusAsync(t.a, 'pair', 'resync', '--group', 'g', '--background', '--json');
    const { job } = JSON.parse((await resync).stdout);
    const seen: number[] = [];
    await until(
      () => {
        const jobs = JSON.parse(ok(t.a, 'jobs', '--json').stdout) as Array<{ id: string; state: string; done: number }>;
        const j = jobs.find((x) => x.id === job)!;
        seen.push(j.done);
        return j.state === 'running' ? undefined : j.state;
      },
      60_000,
      'the resync to end',
    );
    stop = true;
    const writes = await writer;
    expect(writes).toBeGreaterThan(20);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(display(t.a).state).toBe('PAIR');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '30').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });
});
