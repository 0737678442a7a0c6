/** `plexus pair display` only reads: not one byte, size or mtime of the home changes. */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI } from '../../helpers/home.js';
import { ok, useScratch } from '../cli-helpers.js';
import { display, G, volumes } from './pair-helpers.js';

// `strace -V` succeeds even where ptrace is forbidden; tracing a real process tells.
const canTrace = spawnSync('strace', ['-f', '-e', 'trace=none', 'true']).status === 0;
const s = useScratch();
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/index.js');

/** Every file under `dir`: size, mtime (ns) and SHA-256, by relative path. */
function inventory(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    const st = fs.statSync(p, { bigint: true });
    if (!st.isFile()) continue;
    out[f] = `${st.size} ${st.mtimeNs} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
  }
  return out;
}

describe('pair display is read-only', () => {
  it("leaves a dead owner's bitmap logs (torn tail included), leftovers and records exactly as they were", async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p');
    // An owner writes through the pair (each newly dirtied granule is a log record)
    // and dies without closing: the logs keep their records, the marker stays.
    const script = `
      const { Home, Mirrors } = await import(${JSON.stringify(DIST)});
      const m = new Mirrors(Home.open(${JSON.stringify(s.home)}));
      const p = await m.openIo('p', { write: true });
      p.write(${3 * G}, Buffer.alloc(100, 1));
      p.write(${9 * G}, Buffer.alloc(2 * ${G}, 2));
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const pairs = path.join(s.home, 'pairs');
    const plog = path.join(pairs, 's.pdirty.bitmap.log');
    expect(fs.statSync(plog).size).toBeGreaterThan(0);
    // A torn append at the moment of death, and a snapshot that never got renamed.
    fs.appendFileSync(plog, Buffer.alloc(13, 0xee));
    fs.writeFileSync(path.join(pairs, 's.sdirty.bitmap.tmp'), 'half a snapshot');
    fs.rmSync(path.join(pairs, 's.filled.bitmap.log'));
    expect(fs.existsSync(path.join(pairs, 'p.open'))).toBe(true);

    const before = inventory(s.home);
    await new Promise((res) => setTimeout(res, 20));
    const shown = display(s.home, 'p');
    ok(s.home, 'pair', 'display');
    ok(s.home, 'pair', 'display', 'p', '--plex', 's');
    expect(inventory(s.home)).toEqual(before);
    // And it still sees what the logs say: granules 3, 9 and 10, recorded as the 4 MiB
    // intent extent holding them (docs/bitmap-sidecar.md, "Intent extents").
    expect(shown[0]).toMatchObject({ state: 'PSUS', busy: false, dirtyBytes: 4 * 1024 * 1024 });
  });

  it.skipIf(!canTrace)('asks whether the pair is busy without taking its lock (an owner starting then would get E_BUSY)', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const trace = path.join(s.dir, 'strace.txt');
    const r = spawnSync('strace', ['-f', '-e', 'trace=flock', '-o', trace, process.execPath, CLI, '--home', s.home, 'pair', 'display', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, PLEXUS_HOME: '' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ state: 'PAIR', busy: false });
    expect(
      fs
        .readFileSync(trace, 'utf8')
        .split('\n')
        .filter((l) => l.includes('flock(')),
    ).toEqual([]);
  });

  it('still sees a live owner as busy', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const script = `
      const { Home, Mirrors } = await import(${JSON.stringify(DIST)});
      const io = await new Mirrors(Home.open(${JSON.stringify(s.home)})).openIo('p', { write: true });
      process.stdout.write('open\\n');
      setTimeout(() => io.close(), 60000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      // Opened, or dead: a child that dies before saying so fails the test now, not at its timeout.
      await new Promise<void>((res, rej) => {
        child.stdout.once('data', () => res());
        child.once('error', rej);
        child.once('exit', (code, signal) => rej(new Error(`the owner exited (${code ?? signal}) before opening the pair`)));
      });
      expect(display(s.home, 'p')[0]).toMatchObject({ busy: true });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
