/** Starting and stopping real agents (`plexus serve` child processes) for tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, plexus } from '../helpers/home.js';

/** A `plexus serve` child. */
export interface AgentChild {
  child: ChildProcess;
  pid: number;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines so far. */
  log(): Array<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once it exits. */
  exited: Promise<number | string>;
}

/** Starts `plexus --home HOME serve ARGS` and resolves once its control socket answers. */
export function startAgent(home: string, ...args: string[]): Promise<AgentChild> {
  return startAgentWith(home, [], ...args);
}

/** As `startAgent`, the command run under `prefix` (e.g. `ip netns exec NS`). */
export async function startAgentWith(home: string, prefix: string[], ...args: string[]): Promise<AgentChild> {
  // The log goes to a file: a test blocked in spawnSync does not drain a pipe, and an
  // agent writing to a full pipe would block.
  const log = path.join(path.dirname(home), 'agent-log.jsonl');
  const argv = [process.execPath, CLI, '--home', home, 'serve', '--log-file', log, ...args];
  const [cmd, ...rest] = [...prefix, ...argv];
  const child = spawn(cmd!, rest, { env: { ...process.env, PLEXUS_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let done: number | string | undefined;
  void exited.then((c) => (done = c));
  const socket = path.join(home, 'agent.sock');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (done !== undefined) throw new Error(`plexus serve exited ${done} before serving: ${out}`);
    if (fs.existsSync(socket) && (await answers(socket)) && out.includes('plexus agent serving')) return { child, pid: child.pid!, output: () => out, log: () => readLog(log), exited };
    await new Promise((r) => setTimeout(r, 30));
  }
  child.kill('SIGKILL');
  throw new Error(`plexus serve did not answer within 20 s: ${out}`);
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Stops an agent with SIGTERM and returns its exit code. */
export async function stopAgent(a: AgentChild): Promise<number | string> {
  a.child.kill('SIGTERM');
  return a.exited;
}

/** Kills an agent with SIGKILL (nothing is flushed or closed) and waits for it to be gone. */
export async function killAgent(a: AgentChild): Promise<void> {
  a.child.kill('SIGKILL');
  await a.exited;
}

/** Waits until `plexus jobs --json` satisfies `pred` (at most `ms`). */
export async function waitForJobs(
  home: string,
  pred: (jobs: Array<{ id: string; state: string; kind: string; done: number; total: number }>) => boolean,
  ms = 30_000,
): Promise<Array<{ id: string; state: string; kind: string; done: number; total: number }>> {
  const deadline = Date.now() + ms;
  let last: Array<{ id: string; state: string; kind: string; done: number; total: number }> = [];
  while (Date.now() < deadline) {
    const r = plexus(home, 'jobs', '--json');
    if (r.code === 0) {
      last = JSON.parse(r.stdout);
      if (pred(last)) return last;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`jobs never matched: ${JSON.stringify(last)}`);
}

function readLog(file: string): Array<Record<string, unknown>> {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
