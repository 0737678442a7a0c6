/**
 * A copy device stuck in a system call (a hang no cancellation reaches, unlike
 * `--hang`): the chunked job settles at the command timeout, moves on to the next
 * device, and takes the stuck device, its drive and cartridge out of service.
 */

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, plexus } from '../helpers/home.js';
import { checksum, expectFailure, ok, sha256, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Listed {
  resources: Array<{ name: string; kind: string; state: string }>;
}

describe('a copy device stuck in a system call', () => {
  it('the chunked job completes on the next device within timeout + margin, restores byte-identical, and the device is unavailable', () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '2', '--cartridge-size', '32M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'db', '--size', '8M');
    ok(s.home, 'volume', 'write', 'db', '--random', '8M', '--seed', '7');
    const sum = checksum(s.home, 'db');
    ok(s.home, 'fault', 'inject', 'xcopy0', '--stuck', '--after', '3M');
    expect(ok(s.home, 'fault', 'list').stdout).toMatch(/xcopy0\s+stuck\s+3145728/);
    const started = Date.now();
    // A timeout of a few seconds: the healthy stream 1 must never meet it on a loaded machine.
    const r = plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--timeout', '3');
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(0);
    // Timeout 3 s, then the grace (5 s, whatever the timeout) for the cancelled command,
    // then stream 1 writes the rest: a bounded time, never for ever.
    expect(took).toBeGreaterThanOrEqual(8000);
    expect(took).toBeLessThan(40_000);
    expect(r.stdout).toMatch(/\n0\s+xcopy0\s+lib\/drive0\s+fc0\s+0 B\s+failed: E_TIMEOUT: segment command 3 did not complete within 3000 ms; it did not return when cancelled/);
    // Nothing of stream 0's cartridge is durable: stream 1 writes everything.
    expect(r.stdout).toMatch(/\n1\s+xcopy1\s+lib\/drive1\s+fc1\s+8\.00 MiB\s+done/);
    const job = Number(/^job (\d+)/.exec(r.stdout)![1]);
    const to = path.join(s.dir, 'db.out');
    ok(s.home, 'restore', String(job), '--to', to);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
    const listed = JSON.parse(ok(s.home, 'resources', 'list', '--json').stdout) as Listed;
    const state = (n: string): string | undefined => listed.resources.find((x) => x.name === n)?.state;
    expect(state('xcopy0')).toBe('unavailable');
    expect(state('lib/drive0')).toBe('unavailable');
    const carts = listed.resources.filter((x) => x.kind === 'cartridge' && x.state === 'unavailable');
    expect(carts).toHaveLength(1);
    expect(state('xcopy1')).toBe('available');
    expect(state('lib/drive1')).toBe('available');
    // The next chunked job cannot secure two streams any more: the stuck drive is out.
    const again = plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/E_RESOURCES/);
  }, 90_000);

  it('Ctrl-C while a command is stuck: exit 130, and the device, drive and cartridge stay available (a cancel proves nothing about them)', async () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '2', '--cartridge-size', '32M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'db', '--size', '8M');
    ok(s.home, 'volume', 'write', 'db', '--random', '8M', '--seed', '7');
    ok(s.home, 'fault', 'inject', 'xcopy0', '--stuck', '--after', '0');
    const child = spawn(process.execPath, [CLI, '--home', s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--timeout', '120'], {
      env: { ...process.env, PLEXUS_HOME: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stdout!.resume();
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/stream 0: loaded/.test(err)) resolve();
      });
      void exit.then(() => resolve());
    });
    // Stream 0's first read blocks at once; give it time to get there.
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    expect(await exit, err).toBe(130);
    // The stuck path was taken (the command never returned from the cancel).
    expect(err).toMatch(/did not return when cancelled/);
    expect(err).toMatch(/E_CANCELLED/);
    const listed = JSON.parse(ok(s.home, 'resources', 'list', '--json').stdout) as Listed;
    expect(listed.resources.filter((x) => x.state === 'unavailable').map((x) => x.name)).toEqual([]);
  }, 60_000);

  it('--timeout 1e300 is refused with one message (it used to abort Node with exit 134)', () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '2', '--cartridge-size', '8M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'db', '--size', '1M');
    for (const t of ['1e300', 'Infinity', 'NaN', '-1', '0', '3000000']) {
      const r = plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--timeout', t);
      expectFailure(r, 'E_INVALID', '--timeout');
    }
  });
});
