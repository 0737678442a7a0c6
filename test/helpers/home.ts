/** Scratch homes and a CLI runner for tests. */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI entry point (runs the built dist/). */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');

/** A fresh empty directory under the OS temp dir, removed by `cleanup`. */
export function scratchDir(prefix = 'plexus-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `plexus ARGS` with `--home HOME` to completion. */
export function plexus(home: string, ...args: string[]): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, '--home', home, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PLEXUS_HOME: '' },
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `plexus ARGS` asynchronously (for tests that must not block the event loop). */
export function plexusAsync(home: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--home', home, ...args], { env: { ...process.env, PLEXUS_HOME: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
