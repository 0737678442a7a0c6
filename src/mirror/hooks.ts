/** Freeze and thaw hooks around a split: shell commands run with a timeout. */
import { spawn } from 'node:child_process';
import { PlexusError } from '../errors.js';

/** How a hook command ended. */
export type HookStatus = 'ok' | 'failed' | 'killed' | 'timeout' | 'not-started';

/** What a hook command did; every outcome is one of these (the command always settles). */
export interface HookResult {
  command: string;
  /** `ok` (exit 0), `failed` (non-zero exit), `killed` (ended by a signal), `timeout`
   * (outlived its timeout and was killed), `not-started` (could not be spawned). */
  status: HookStatus;
  exitCode: number | null;
  signal: string | null;
  ms: number;
  output: string;
}

/** A hook that did not end with exit 0: E_HOOK, or E_TIMEOUT, with its result. */
export class HookError extends PlexusError {
  constructor(
    code: string,
    message: string,
    readonly hook: HookResult,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** One line saying how a hook ended, naming it, its command and (if any) its signal. */
export function describeHook(what: 'freeze' | 'thaw', r: HookResult): string {
  const tail = r.output.trim().split('\n').slice(-1)[0] ?? '';
  const said = tail ? ` (${tail})` : '';
  switch (r.status) {
    case 'ok':
      return `${what} command succeeded in ${r.ms} ms: ${r.command}`;
    case 'failed':
      return `${what} command failed with exit ${r.exitCode}: ${r.command}${said}`;
    case 'killed':
      return `${what} command was killed by signal ${r.signal}: ${r.command}${said}`;
    case 'timeout':
      return `${what} command timed out after ${r.ms} ms and was killed: ${r.command}`;
    case 'not-started':
      return `${what} command could not start: ${r.command}${said}`;
  }
}

/** Runs `command` in a shell and always settles: the result when it exits 0, else a
 * HookError (E_HOOK for a non-zero exit, a signal or a spawn failure; E_TIMEOUT). */
export function runHook(what: 'freeze' | 'thaw', command: string, timeoutMs: number): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let settled = false;
    let output = '';
    let timer: NodeJS.Timeout | undefined;
    const settle = (status: HookStatus, exitCode: number | null, signal: string | null, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const r: HookResult = { command, status, exitCode, signal, ms: status === 'timeout' ? timeoutMs : Date.now() - started, output };
      if (status === 'ok') resolve(r);
      else reject(new HookError(status === 'timeout' ? 'E_TIMEOUT' : 'E_HOOK', describeHook(what, r), r, { cause }));
    };
    let child: ReturnType<typeof spawn>;
    try {
      // Its own process group, so a timeout can kill what the shell started too: an
      // orphaned grandchild would hold the pipes open and keep this process alive.
      child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      output = (e as Error).message;
      settle('not-started', null, null, e);
      return;
    }
    timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
      settle('timeout', null, 'SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    child.on('error', (e) => {
      output += e.message;
      settle('not-started', null, null, e);
    });
    const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (signal) settle('killed', code, signal);
      else settle(code === 0 ? 'ok' : 'failed', code, null);
    };
    // 'close' comes once the output is all read; a grandchild left holding the pipes
    // would delay it for ever, so 'exit' settles too, shortly after.
    child.on('close', ended);
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        ended(code, signal);
        // A background child the hook left holds the pipes: stop reading them and let it
        // go, or it keeps this process (and its descriptors) alive until it exits.
        child.stdout?.destroy();
        child.stderr?.destroy();
        child.unref();
      }, 200).unref();
    });
  });
}
