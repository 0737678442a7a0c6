/**
 * Asynchronous remote replication between two real agents on loopback (issue 12): the
 * sequenced journal shipped in order, sync-wait and its statuses, the remote's fence,
 * authentication, restarts and kills of either site, resync out of PSUE.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { killAgent, stopAgent } from '../agent/agent-helpers.js';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';
import { control, digest, fileDigest, groupDisplay, makeSites, pairV, type Sites, until, volumeFile } from './sites.js';

const s = useScratch();
let sites: Sites | undefined;

afterEach(async () => {
  await sites?.cleanup();
  sites = undefined;
});

async function paired(size = '32M', ...createArgs: string[]): Promise<Sites> {
  const t = makeSites(s.dir);
  sites = t;
  return pairV(t, size, createArgs, () => ok(t.a, 'volume', 'write', 'v', '--random', '4M', '--seed', '1'));
}

const display = groupDisplay;

describe('remote replication', () => {
  it('ships writes in order: sync-wait DONE, equal volumes, lag, markers, and the remote refuses writes of its own', async () => {
    const t = await paired();
    expect(display(t.a)).toMatchObject({ state: 'PAIR', mode: 'async', link: 'up', epoch: 1 });
    for (let i = 0; i < 5; i++) ok(t.a, 'volume', 'write', 'v', '--offset', `${i * 3}M`, '--random', '1M', '--seed', String(10 + i));
    const now = ok(t.a, 'sync-wait', '--group', 'g', '--nowait');
    expect(now.stdout).toMatch(/^NOWAIT 1:\d+\n$/);
    const done = ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20');
    expect(done.stdout).toMatch(/^DONE 1:\d+\n$/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
    const d = display(t.a);
    expect(d.appliedSeq).toBe(d.lastSeq);
    expect(d.lag).toEqual({ records: 0, bytes: 0, seconds: 0 });
    // pair display shows the group beside local pairs.
    const rows = JSON.parse(ok(t.a, 'pair', 'display', '--json').stdout);
    expect(rows.some((r: { kind?: string; group?: string }) => r.kind === 'remote' && r.group === 'g')).toBe(true);
    // While paired the remote volume takes no writes from its own site.
    expectFailure(plexus(t.b, 'volume', 'write', 'v', '--pattern', '1', '--length', '4K'), 'E_STATE', 'remote secondary of group g');
    // And the primary's writes go through the agent, which journals them.
    process.env.PLEXUS_NO_AGENT = '1';
    try {
      expectFailure(plexus(t.a, 'volume', 'write', 'v', '--pattern', '1', '--length', '4K'), 'E_AGENT', 'remote group g');
    } finally {
      delete process.env.PLEXUS_NO_AGENT;
    }
  });

  it('keeps a two-volume group in order at the remote: a later write never shows without every earlier one', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    for (const h of [t.a, t.b]) for (const v of ['v1', 'v2']) ok(h, 'volume', 'create', v, '--size', '8M');
    await t.startB();
    await t.startA();
    ok(t.a, 'remote', 'pair', 'create', 'v1', `${t.peer}/v1`, '--group', 'g');
    ok(t.a, 'remote', 'pair', 'create', 'v2', `${t.peer}/v2`, '--group', 'g');
    expect(display(t.a).members.map((m: { volume: string }) => m.volume)).toEqual(['v1', 'v2']);
    const c = await control(t.a);
    const N = 400;
    const block = (i: number) => Buffer.alloc(4096, (i % 251) + 1);
    let violations = 0;
    let observations = 0;
    let writing = true;
    // An observer reading the remote files directly while the writes go on: v2 first,
    // then v1, so a write of v2 it sees was applied before the read of v1 began.
    const observer = (async () => {
      const f1 = fs.openSync(volumeFile(t.b, 'v1'), 'r');
      const f2 = fs.openSync(volumeFile(t.b, 'v2'), 'r');
      const b1 = Buffer.alloc(N * 4096);
      const b2 = Buffer.alloc(N * 4096);
      while (writing) {
        fs.readSync(f2, b2, 0, b2.length, 0);
        fs.readSync(f1, b1, 0, b1.length, 0);
        observations++;
        for (let i = 0; i < N; i++) if (b2[i * 4096] === (i % 251) + 1 && b1[i * 4096] !== (i % 251) + 1) violations++;
        await new Promise((r) => setTimeout(r, 2));
      }
      fs.closeSync(f1);
      fs.closeSync(f2);
    })();
    try {
      // Each write of v2 depends on the write of v1 before it (acknowledged first).
      for (let i = 0; i < N; i++) {
        await c.call('volume.write', { name: 'v1', offset: i * 4096, data: block(i) });
        await c.call('volume.write', { name: 'v2', offset: i * 4096, data: block(i) });
      }
    } finally {
      c.close();
    }
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    writing = false;
    await observer;
    expect(observations).toBeGreaterThan(5);
    expect(violations).toBe(0);
    expect(digest(t.b, 'v1')).toBe(digest(t.a, 'v1'));
    expect(digest(t.b, 'v2')).toBe(digest(t.a, 'v2'));
  });

  it('refuses a peer with the wrong key (logged) and survives garbage on its peer port', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    ok(t.a, 'volume', 'create', 'v', '--size', '4M');
    ok(t.b, 'volume', 'create', 'v', '--size', '4M');
    await t.startB();
    // Garbage, a hello with no key, an oversized frame: each connection dropped.
    const [host, port] = [t.peer.split(':')[0]!, Number(t.peer.split(':')[1])];
    for (const bytes of [Buffer.from('GET / HTTP/1.0\r\n\r\n'), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2]), Buffer.alloc(10_000, 7)]) {
      await new Promise<void>((resolve) => {
        const sock = net.connect({ host, port }, () => sock.write(bytes));
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        setTimeout(() => sock.destroy(), 2000);
      });
    }
    fs.writeFileSync(`${s.dir}/other`, `${'ab'.repeat(32)}\n`);
    ok(t.a, 'remote', 'key', '--import', `${s.dir}/other`);
    await t.startA();
    expectFailure(plexus(t.a, 'remote', 'pair', 'create', 'v', `${t.peer}/v`, '--group', 'g'), 'E_AUTH', 'does not hold');
    const refusals = t.agentB!.log().filter((l) => l.event === 'peer-refused' || l.event === 'peer-dropped');
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    // B still serves, and nothing was attached there.
    expect(JSON.parse(ok(t.b, 'remote', 'status', '--json').stdout).targets).toEqual([]);
    ok(t.b, 'volume', 'write', 'v', '--pattern', '1', '--length', '4K');
  });

  it('answers TIMEOUT while the remote is stalled, BROKEN when split, CHANGED for a marker from before a resync', async () => {
    const t = await paired();
    const marker = ok(t.a, 'sync-wait', '--group', 'g', '--nowait').stdout.split(' ')[1]!.trim();
    process.kill(t.agentB!.pid, 'SIGSTOP');
    try {
      ok(t.a, 'volume', 'write', 'v', '--random', '1M', '--seed', '3');
      const r = plexus(t.a, 'sync-wait', '--group', 'g', '--timeout', '1');
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^TIMEOUT 1:\d+\n$/);
    } finally {
      process.kill(t.agentB!.pid, 'SIGCONT');
    }
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    ok(t.a, 'pair', 'split', '--group', 'g');
    expect(display(t.a).state).toBe('PSUS');
    const broken = plexus(t.a, 'sync-wait', '--group', 'g', '--timeout', '1');
    expect(broken.code).toBe(4);
    expect(broken.stdout).toMatch(/^BROKEN/);
    ok(t.a, 'pair', 'resync', '--group', 'g');
    expect(display(t.a)).toMatchObject({ state: 'PAIR', epoch: 2 });
    const changed = plexus(t.a, 'sync-wait', '--group', 'g', '--marker', marker, '--timeout', '1');
    expect(changed.code).toBe(5);
    expect(changed.stdout).toBe(`CHANGED ${marker}\n`);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('goes to PSUE when the remote stays away past the link timeout; the resync ships only the dirty regions', async () => {
    const t = await paired('32M', '--link-timeout', '2');
    // Records the remote has not confirmed durable would be folded (and resent) too.
    await until(() => (display(t.a).durableSeq === display(t.a).lastSeq ? true : undefined), 10_000, 'durable');
    await stopAgent(t.agentB!);
    // Written while the link is down: tracked once the group suspends.
    ok(t.a, 'volume', 'write', 'v', '--offset', '8M', '--random', '1M', '--seed', '4');
    await until(() => (display(t.a).state === 'PSUE' ? true : undefined), 20_000, 'PSUE');
    ok(t.a, 'volume', 'write', 'v', '--offset', '20M', '--random', '512K', '--seed', '5');
    const dirty = display(t.a).members[0].dirtyBytes;
    expect(dirty).toBe(1536 * 1024);
    await t.startB();
    const r = JSON.parse(ok(t.a, 'pair', 'resync', '--group', 'g', '--json').stdout);
    expect(r.bytes).toBe(dirty);
    expect(r.dataBytes).toBe(dirty);
    expect(display(t.a)).toMatchObject({ state: 'PAIR', epoch: 2 });
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('resumes after the remote is killed -9 mid-apply, from its durable sequence number, nothing skipped', async () => {
    const t = await paired('64M');
    const c = await control(t.a);
    try {
      for (let i = 0; i < 24; i++) await c.call('volume.write', { name: 'v', offset: i * (2 << 20), data: Buffer.alloc(2 << 20, i + 1) });
    } finally {
      c.close();
    }
    await killAgent(t.agentB!);
    ok(t.a, 'volume', 'write', 'v', '--offset', '50M', '--random', '2M', '--seed', '6');
    await t.startB();
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '30').stdout).toMatch(/^DONE/);
    expect(display(t.a).state).toBe('PAIR');
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('falls back to bitmap tracking when the journal fills: writes never block, PSUE with a clear log line', async () => {
    const t = await paired('32M', '--journal-capacity', '4M');
    process.kill(t.agentB!.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      ok(t.a, 'volume', 'write', 'v', '--offset', '4M', '--random', '12M', '--seed', '8');
      expect(Date.now() - started).toBeLessThan(8000);
      const d = display(t.a);
      expect(d.state).toBe('PSUE');
      expect(d.lastError).toContain('journal full');
      expect(d.members[0].dirtyBytes).toBeGreaterThanOrEqual(12 << 20);
      const line = await until(() => t.agentA!.log().find((l) => l.event === 'remote-group-state' && l.to === 'PSUE'), 5000, 'the PSUE log line');
      expect(String(line.why)).toContain('journal full');
    } finally {
      process.kill(t.agentB!.pid, 'SIGCONT');
    }
    ok(t.a, 'pair', 'resync', '--group', 'g');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('resumes shipping from the journal after the primary agent is killed -9', async () => {
    const t = await paired();
    process.kill(t.agentB!.pid, 'SIGSTOP');
    try {
      ok(t.a, 'volume', 'write', 'v', '--offset', '2M', '--random', '6M', '--seed', '7');
      expect(display(t.a).lag.records).toBeGreaterThan(0);
      await killAgent(t.agentA!);
    } finally {
      process.kill(t.agentB!.pid, 'SIGCONT');
    }
    const before = fileDigest(t.a, 'v');
    await t.startA();
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '30').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(before);
  });
});

describe('remote replication through NBD', () => {
  it('replicates what a real program writes through the primary NBD export; the remote export refuses writes while paired', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    ok(t.a, 'volume', 'create', 'v', '--size', '16M');
    ok(t.b, 'volume', 'create', 'v', '--size', '16M');
    const sockA = `${s.dir}/a.nbd`;
    const sockB = `${s.dir}/b.nbd`;
    await t.startB('--nbd-socket', sockB);
    await t.startA('--nbd-socket', sockA);
    ok(t.a, 'remote', 'pair', 'create', 'v', `${t.peer}/v`, '--group', 'g');
    const io = (sock: string, cmd: string) => spawnSync('qemu-io', ['-f', 'raw', '-c', cmd, `nbd+unix:///v?socket=${sock}`], { encoding: 'utf8' });
    for (const [i, cmd] of ['write -P 0x61 0 1M', 'write -P 0x62 4M 64k', 'write -z 8M 1M', 'discard 12M 1M', 'flush'].entries()) {
      const r = io(sockA, cmd);
      expect(r.status, `${i}: ${r.stderr}${r.stdout}`).toBe(0);
    }
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
    // The remote's own export takes no writes while the group is paired.
    const refused = io(sockB, 'write -P 0x63 0 4k');
    expect(`${refused.stdout}${refused.stderr}`).toMatch(/Operation not permitted|Permission denied|failed/i);
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });
});

describe('remote pair delete and keys', () => {
  it('deletes a group at both sites: the remote volume takes writes again, the primary no longer needs the agent', async () => {
    const t = await paired('8M');
    const r = JSON.parse(ok(t.a, 'remote', 'pair', 'delete', '--group', 'g', '--json').stdout);
    expect(r).toMatchObject({ group: 'g', deleted: true, remote: 'detached' });
    expect(JSON.parse(ok(t.a, 'remote', 'pair', 'display', '--json').stdout)).toEqual([]);
    expect(JSON.parse(ok(t.b, 'remote', 'status', '--json').stdout).targets).toEqual([]);
    ok(t.b, 'volume', 'write', 'v', '--pattern', '7', '--length', '4K');
    // No longer journaled by the agent: a process of its own may write it again.
    process.env.PLEXUS_NO_AGENT = '1';
    try {
      ok(t.a, 'volume', 'write', 'v', '--pattern', '7', '--length', '4K');
    } finally {
      delete process.env.PLEXUS_NO_AGENT;
    }
    expect(digest(t.b, 'v')).toBe(digest(t.a, 'v'));
  });

  it('refuses a key file that is not a key, and remote commands without an agent', () => {
    sites = makeSites(s.dir);
    fs.writeFileSync(`${s.dir}/bad`, 'not a key\n');
    expectFailure(plexus(sites.a, 'remote', 'key', '--import', `${s.dir}/bad`), 'E_INVALID', '64 hex digits');
    const key = JSON.parse(ok(sites.a, 'remote', 'key', '--json').stdout);
    expect(key).toMatchObject({ created: false });
    expect(fs.statSync(key.file).mode & 0o777).toBe(0o600);
    expectFailure(plexus(sites.a, 'sync-wait', '--group', 'g'), 'E_AGENT', 'no site agent');
    expectFailure(plexus(sites.a, 'remote', 'pair', 'create', 'v', '127.0.0.1:1/v', '--group', 'g'), 'E_AGENT', 'no site agent');
  });
});
