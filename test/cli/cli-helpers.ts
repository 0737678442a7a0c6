/** Shared helpers for the CLI tests (not a test file itself). */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { CLI, type CliResult, plexus, scratchDir } from '../helpers/home.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** A scratch directory per test with a home inside it; call at the top of a test file. */
export function useScratch(): { readonly dir: string; readonly home: string } {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  beforeEach(() => {
    scratch = scratchDir('plexus-cli-test-');
  });
  afterEach(() => {
    scratch?.cleanup();
    scratch = undefined;
  });
  return {
    get dir() {
      return scratch!.dir;
    },
    get home() {
      return path.join(scratch!.dir, 'home');
    },
  };
}

/** Runs `plexus` and insists it succeeded, returning the result. */
export function ok(home: string, ...args: string[]): CliResult {
  const r = plexus(home, ...args);
  if (r.code !== 0) throw new Error(`plexus ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Runs `plexus` with raw (binary) stdout. */
export function plexusRaw(home: string, ...args: string[]): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--home', home, ...args], {
    encoding: 'buffer',
    env: { ...process.env, PLEXUS_HOME: '' },
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** Asserts an operational failure: exit 1, exactly one `plexus: ... (CODE)` line on stderr. */
export function expectFailure(r: CliResult, code: string, ...mentions: string[]): void {
  expect(r.code, `stderr: ${r.stderr}`).toBe(1);
  expect(r.stderr.endsWith('\n')).toBe(true);
  const lines = r.stderr.slice(0, -1).split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^plexus: .+ \\(${code}\\)$`));
  for (const m of mentions) expect(lines[0]).toContain(m);
}

/** SHA-256 hex of a buffer. */
export function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** The checksum the CLI prints for a volume (or a range of it). */
export function checksum(home: string, name: string, ...range: string[]): string {
  const out = ok(home, 'volume', 'checksum', name, ...range).stdout.trim();
  expect(out).toMatch(/^[0-9a-f]{64}$/);
  return out;
}

/** The volume names `volume list --json` reports. */
export function listNames(home: string): string[] {
  return (JSON.parse(ok(home, 'volume', 'list', '--json').stdout) as Array<{ name: string }>).map((v) => v.name);
}

/** Paths of a volume's data and identity files. */
export function volumeFiles(home: string, name: string): { img: string; meta: string } {
  const img = path.join(home, 'volumes', `${name}.img`);
  return { img, meta: `${img}.meta` };
}

/** Whether a path exists. */
export function exists(p: string): boolean {
  return fs.existsSync(p);
}
