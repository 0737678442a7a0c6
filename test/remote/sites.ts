/** Two sites for replication tests: homes A (primary) and B (remote), a shared key, agents. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { type AgentChild, killAgent, startAgent, startAgentWith } from '../agent/agent-helpers.js';
import { ok } from '../cli/cli-helpers.js';

/** The two homes of a test and their running agents. */
export interface Sites {
  a: string;
  b: string;
  /** B's peer address once B runs. */
  peer: string;
  agentA?: AgentChild;
  agentB?: AgentChild;
  startA(...args: string[]): Promise<AgentChild>;
  startB(...args: string[]): Promise<AgentChild>;
  /** Runs B's agent under this command prefix (a network namespace). */
  bPrefix: string[];
  /** Kills whatever agents still run. */
  cleanup(): Promise<void>;
}

/** Homes `dir/a/home` and `dir/b/home`, initialised, sharing one peer key. */
export function makeSites(dir: string, listen = '127.0.0.1:0'): Sites {
  const a = path.join(dir, 'a', 'home');
  const b = path.join(dir, 'b', 'home');
  fs.mkdirSync(path.dirname(a), { recursive: true });
  fs.mkdirSync(path.dirname(b), { recursive: true });
  ok(a, 'init');
  ok(b, 'init');
  const key = ok(b, 'remote', 'key').stdout;
  fs.writeFileSync(path.join(dir, 'key'), key);
  ok(a, 'remote', 'key', '--import', path.join(dir, 'key'));
  const all: AgentChild[] = [];
  const sites: Sites = {
    a,
    b,
    peer: '',
    bPrefix: [],
    async startA(...args) {
      sites.agentA = await startAgent(a, ...args);
      all.push(sites.agentA);
      return sites.agentA;
    },
    async startB(...args) {
      // The port of the first start is kept, so A's records keep reaching B after a restart.
      const addr = sites.peer || listen;
      sites.agentB = await startAgentWith(b, sites.bPrefix, '--listen', addr, ...args);
      all.push(sites.agentB);
      const m = /peers on (\S+);/.exec(sites.agentB.output());
      if (!m) throw new Error(`no peer address in: ${sites.agentB.output()}`);
      sites.peer = m[1]!;
      return sites.agentB;
    },
    async cleanup() {
      for (const c of all) {
        if (c.child.exitCode === null && c.child.signalCode === null) {
          try {
            process.kill(c.pid, 'SIGCONT');
          } catch {
            // Gone.
          }
          await killAgent(c);
        }
      }
    },
  };
  return sites;
}

/** SHA-256 of a volume's data file read directly (no agent involved). */
export function fileDigest(home: string, volume: string): string {
  return crypto
    .createHash('sha256')
    .update(fs.readFileSync(volumeFile(home, volume)))
    .digest('hex');
}

/** The data file of `volume` in `home`. */
export function volumeFile(home: string, volume: string): string {
  return path.join(home, 'volumes', `${volume}.img`);
}

/** The digest `plexus volume checksum` prints. */
export function digest(home: string, volume: string): string {
  return ok(home, 'volume', 'checksum', volume).stdout.trim();
}

/** A control connection to a home's agent, for many fast writes. */
export async function control(home: string): Promise<AgentClient> {
  const c = await AgentClient.connect(home);
  if (!c) throw new Error(`no agent at ${home}`);
  return c;
}

/** Polls `fn` until it returns a value (not undefined) or `ms` pass. */
export async function until<T>(fn: () => T | undefined, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Volume `v` of `size` at both sites of `sites`, both agents started, and `v` paired in
 * group `g` (`createArgs` go to `remote pair create`); `before` runs once the volumes
 * exist, before anything starts (data to copy initially).
 */
export async function pairV(sites: Sites, size: string, createArgs: string[] = [], before?: () => void): Promise<Sites> {
  ok(sites.a, 'volume', 'create', 'v', '--size', size);
  ok(sites.b, 'volume', 'create', 'v', '--size', size);
  before?.();
  await sites.startB();
  await sites.startA();
  ok(sites.a, 'remote', 'pair', 'create', 'v', `${sites.peer}/v`, '--group', 'g', ...createArgs);
  return sites;
}

/** `remote pair display --json` of a home's first group. */
export const groupDisplay = (home: string) => JSON.parse(ok(home, 'remote', 'pair', 'display', '--json').stdout)[0];
