/**
 * `plexus restore JOB --to-volume V` (JP 2002-041345, Fig. 3 and [0043]): into a plain
 * volume, onto a mirrored primary duplexed or split-and-resynced (primary and secondary
 * identical after), a split pair left dirty for its resync, byte ranges, bad input, and
 * with the agent: a volume with an NBD client refused unless forced, its export paused.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentChild, killAgent, startAgent } from '../agent/agent-helpers.js';
import { checksum, expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';

const s = useScratch();
let agents: AgentChild[] = [];

afterEach(async () => {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) await killAgent(a);
  agents = [];
});

interface Report {
  volume: string;
  bytes: number;
  mirror: string | null;
  duplexed: string[];
  resynced: Array<{ pair: string; bytes: number }>;
  tracked: string[];
  clientsCut: number;
}

/** A library, volume `p` (8 MiB of seeded data) backed up as job 1; returns its checksum. */
function backedUp(): string {
  ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
  ok(s.home, 'volume', 'create', 'p', '--size', '8M');
  ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '5');
  const sum = checksum(s.home, 'p');
  expect(JSON.parse(ok(s.home, 'backup', 'run', 'p', '--json').stdout).job).toBe(1);
  return sum;
}

const restore = (...args: string[]): Report => JSON.parse(ok(s.home, 'restore', '1', '--to-volume', ...args, '--json').stdout) as Report;
const state = (primary: string): Array<{ secondary: string; state: string; dirtyBytes: number }> =>
  JSON.parse(ok(s.home, 'pair', 'display', primary, '--json').stdout) as Array<{ secondary: string; state: string; dirtyBytes: number }>;

describe('restore into a volume', () => {
  it('restores a plain volume in place, whole or a byte range at the same offsets', () => {
    const sum = backedUp();
    const head = checksum(s.home, 'p', '--length', '1M');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '6');
    const r = restore('p');
    expect([r.volume, r.bytes, r.mirror]).toEqual(['p', 8 << 20, null]);
    expect(checksum(s.home, 'p')).toBe(sum);

    // A range: only those bytes come back.
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '7');
    const changed = checksum(s.home, 'p', '--offset', '2M');
    ok(s.home, 'restore', '1', '--to-volume', 'p', '--length', '1M');
    expect(checksum(s.home, 'p', '--length', '1M')).toBe(head);
    expect(checksum(s.home, 'p', '--offset', '2M')).toBe(changed);
    // Into another, larger volume: at the same offsets.
    ok(s.home, 'volume', 'create', 'big', '--size', '16M');
    restore('big');
    expect(checksum(s.home, 'big', '--length', '8M')).toBe(sum);
  });

  it('onto a mirrored primary: duplexed by default, or split and resynced; primary and secondary identical after', () => {
    const sum = backedUp();
    ok(s.home, 'volume', 'create', 's', '--size', '8M');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '6');
    expect(checksum(s.home, 's')).not.toBe(sum);

    const duplex = restore('p');
    expect(duplex).toMatchObject({ mirror: 'duplex', duplexed: ['p → s'], resynced: [], tracked: [] });
    expect(checksum(s.home, 'p')).toBe(sum);
    expect(checksum(s.home, 's')).toBe(sum);
    expect(state('p')).toEqual([expect.objectContaining({ secondary: 's', state: 'PAIR', dirtyBytes: 0 })]);

    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '7');
    const resync = restore('p', '--mirror', 'resync');
    expect(resync).toMatchObject({ mirror: 'resync', duplexed: [], tracked: [] });
    expect(resync.resynced).toEqual([{ pair: 'p → s', bytes: 8 << 20 }]);
    expect(checksum(s.home, 'p')).toBe(sum);
    expect(checksum(s.home, 's')).toBe(sum);
    expect(state('p')).toEqual([expect.objectContaining({ state: 'PAIR', dirtyBytes: 0 })]);
  });

  it('a split pair keeps its image and gets the restored regions dirty for its resync', () => {
    backedUp();
    const range = checksum(s.home, 'p', '--offset', '4M', '--length', '1M');
    ok(s.home, 'volume', 'create', 's', '--size', '8M');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '6');
    ok(s.home, 'pair', 'split', 'p');
    const image = checksum(s.home, 's');
    const r = restore('p', '--offset', '4M', '--length', '1M');
    expect(r).toMatchObject({ duplexed: [], tracked: ['p → s'], bytes: 1 << 20 });
    expect(checksum(s.home, 's')).toBe(image);
    expect(state('p')[0]!.dirtyBytes).toBe(1 << 20);
    ok(s.home, 'pair', 'resync', 'p');
    expect(checksum(s.home, 'p', '--offset', '4M', '--length', '1M')).toBe(range);
    expect(checksum(s.home, 's')).toBe(checksum(s.home, 'p'));
  });

  it('uses only drives in service and logs each step in the backup manager log', () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '2', '--cartridge-size', '64M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'p', '--size', '4M');
    ok(s.home, 'volume', 'write', 'p', '--random', '4M', '--seed', '5');
    ok(s.home, 'backup', 'run', 'p');
    ok(s.home, 'resources', 'set', 'lib/drive0', '--state', 'unavailable');
    const r = plexus(s.home, 'restore', '1', '--to-volume', 'p');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/drive 1\)/);
    const log = fs.readFileSync(path.join(s.home, 'logs', 'backup-manager.log'), 'utf8');
    expect(log).toMatch(/restore of job 1: loaded \S+ \(library lib, drive 1\)/);
    expect(log).toMatch(/restore of job 1: done, 4194304 bytes from byte 0 read from \S+; drives released/);
    // Every drive out of service: nothing to wait for, the restore fails at once.
    ok(s.home, 'resources', 'set', 'lib/drive1', '--state', 'unavailable');
    expectFailure(plexus(s.home, 'restore', '1', '--to', path.join(s.dir, 'x')), 'E_RESOURCES');
  });

  it('refuses bad destinations with one clear message', () => {
    backedUp();
    ok(s.home, 'volume', 'create', 's', '--size', '8M');
    ok(s.home, 'volume', 'create', 'small', '--size', '4M');
    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'restore', '1', '--to-volume', 's'), 'E_STATE', 'secondary', 'p');
    expectFailure(plexus(s.home, 'restore', '1', '--to-volume', 'small'), 'E_SIZE', 'small');
    expectFailure(plexus(s.home, 'restore', '1', '--to-volume', 'ghost'), 'E_NOENT', 'ghost');
    expectFailure(plexus(s.home, 'restore', '1'), 'E_INVALID', '--to-volume');
    expectFailure(plexus(s.home, 'restore', '1', '--to', path.join(s.dir, 'x'), '--to-volume', 'p'), 'E_INVALID', 'one destination');
    expectFailure(plexus(s.home, 'restore', '1', '--to-volume', 'p', '--mirror', 'sideways'), 'E_INVALID', 'duplex or resync');
  });

  it('with the agent: a volume with an NBD client is refused unless forced; forced, the client is cut and the export comes back', async () => {
    const sum = backedUp();
    const sock = path.join(s.dir, 'nbd.sock');
    const agent = await startAgent(s.home, '--nbd-socket', sock);
    agents.push(agent);
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '6');
    // A client holding a connection open: an interactive qemu-io.
    const client = spawn('qemu-io', ['-f', 'raw', `nbd+unix:///p?socket=${sock}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      let out = '';
      client.stdout.on('data', (d) => (out += d));
      client.stdin.write('read 0 512\n');
      const deadline = Date.now() + 10_000;
      while (!/read 512\/512/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(out).toMatch(/read 512\/512/);
      expectFailure(plexus(s.home, 'restore', '1', '--to-volume', 'p'), 'E_BUSY', 'in use', '--force');
      const r = restore('p', '--force');
      expect(r.clientsCut).toBe(1);
      expect(checksum(s.home, 'p')).toBe(sum);
      // The client was cut: a read on its old connection no longer succeeds.
      const before = out.length;
      await new Promise<void>((resolve) => {
        if (client.exitCode !== null) return resolve();
        client.once('exit', () => resolve());
        client.stdin.write('read 0 512\n');
        client.stdin.end();
      });
      expect(out.slice(before)).not.toMatch(/read 512\/512/);
      // The export is served again after the restore.
      const again = spawn('qemu-io', ['-f', 'raw', '-c', 'read 0 512', `nbd+unix:///p?socket=${sock}`]);
      const code = await new Promise<number | null>((resolve) => again.once('exit', (c) => resolve(c)));
      expect(code).toBe(0);
    } finally {
      client.kill('SIGKILL');
    }
    expect(agent.log().map((e) => e.event)).toEqual(expect.arrayContaining(['export-paused', 'export-resumed']));
  });
});
