/** Freeze and thaw hooks around a split: shell commands run with a timeout. */
import { spawn } from 'node:child_process';
import { PlexusError } from '../errors.js';

/** What a hook command did. */
export interface HookResult {
  command: string;
  ms: number;
  output: string;
}

/** Runs `command` in a shell; rejects with E_HOOK on a non-zero exit or E_TIMEOUT. */
export function runHook(what: 'freeze' | 'thaw', command: string, timeoutMs: number): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout can kill what the shell started too: an
    // orphaned grandchild would hold the pipes open and keep this process alive.
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      child.stdout.destroy();
      child.stderr.destroy();
      reject(new PlexusError('E_TIMEOUT', `${what} command timed out after ${timeoutMs} ms: ${command}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new PlexusError('E_HOOK', `${what} command could not start: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) return;
      if (code !== 0) {
        const tail = output.trim().split('\n').slice(-1)[0] ?? '';
        reject(new PlexusError('E_HOOK', `${what} command failed with exit ${code}: ${command}${tail ? ` (${tail})` : ''}`));
      } else {
        resolve({ command, ms: Date.now() - started, output });
      }
    });
  });
}
