/**
 * The liveness probe of an owner lock (jobs, schedule entries, drives, pairs) asks the
 * kernel without taking the lock: a probe that took it, even for an instant, would make
 * an owner starting at that moment fail with E_BUSY. Observed with strace: the probe
 * makes no flock call and opens nothing read-write. Held or not is answered from the
 * kernel's table of locks, across processes.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const BINDING = path.join(__dirname, '..', '..', 'native', 'index.cjs');
const strace = spawnSync('strace', ['-V']).status === 0;
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-lockprobe-'));
  dirs.push(d);
  return d;
}

/** A child process holding the lock at `file` until killed. */
async function holder(file: string): Promise<ChildProcess> {
  const code = `const n = require(${JSON.stringify(BINDING)}); globalThis.l = n.NativeOwnerLock.acquire(${JSON.stringify(file)}, 'test'); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  return child;
}

/** Runs isHeld(file) in a child under strace; returns the answer and the traced calls on the lock file. */
function probeTraced(dir: string, file: string): { held: boolean; calls: string[] } {
  const trace = path.join(dir, 'strace.txt');
  const code = `const n = require(${JSON.stringify(BINDING)}); const fs = require('node:fs'); fs.writeSync(1, 'probe\\n'); const h = n.NativeOwnerLock.isHeld(${JSON.stringify(file)}); fs.writeSync(1, 'end\\n'); process.stdout.write(JSON.stringify(h));`;
  const r = spawnSync('strace', ['-f', '-e', 'trace=openat,flock,write', '-o', trace, process.execPath, '-e', code], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes('write(1, "probe'));
  const to = lines.findIndex((l) => l.includes('write(1, "end'));
  expect(from).toBeGreaterThanOrEqual(0);
  const calls = lines.slice(from + 1, to).map((l) => l.replace(/^\d+\s+/, ''));
  return { held: JSON.parse(r.stdout.split('\n').at(-1)!) as boolean, calls };
}

describe.skipIf(!strace)('the owner-lock liveness probe', () => {
  it('answers from the kernel without taking the lock or opening the file read-write', async () => {
    const dir = scratch();
    const file = path.join(dir, 'job.lock');
    const child = await holder(file);
    const held = probeTraced(dir, file);
    expect(held.held).toBe(true);
    expect(held.calls.filter((l) => l.startsWith('flock('))).toEqual([]);
    expect(held.calls.filter((l) => l.includes('job.lock') && /O_RDWR|O_WRONLY/.test(l))).toEqual([]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const free = probeTraced(dir, file);
    expect(free.held).toBe(false);
    expect(free.calls.filter((l) => l.startsWith('flock('))).toEqual([]);
  });

  it('a held lock reads as held, a free or missing one as free, from another process', async () => {
    const { NativeOwnerLock } = (await import(BINDING)) as typeof import('../../native/index.cjs');
    const dir = scratch();
    const file = path.join(dir, 'a.lock');
    expect(NativeOwnerLock.isHeld(file)).toBe(false);
    const child = await holder(file);
    expect(NativeOwnerLock.isHeld(file)).toBe(true);
    // Held in this process too.
    const other = path.join(dir, 'b.lock');
    const mine = NativeOwnerLock.acquire(other, 'b');
    expect(NativeOwnerLock.isHeld(other)).toBe(true);
    mine.release();
    expect(NativeOwnerLock.isHeld(other)).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(NativeOwnerLock.isHeld(file)).toBe(false);
  });
});
