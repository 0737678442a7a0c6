/**
 * A real link between two test sites: a network namespace joined to this one by a veth
 * pair, so a test can take the link down and bring it up (this kernel has no netem; a
 * delay comes from src/bench/delay-proxy.ts).
 * Traffic stays on the pair; the namespace is deleted (with its end of the pair) at cleanup.
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** One namespace, its veth pair and addresses. */
export interface TestLink {
  ns: string;
  /** This namespace's address and the other end's. */
  here: string;
  there: string;
  /** `ip netns exec NS`, to run a command on the far side. */
  prefix: string[];
  down(): void;
  up(): void;
  cleanup(): void;
}

/** Whether this machine lets the test make namespaces (root with `ip`). */
export function canMakeLinks(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('ip', ['netns', 'list']).status === 0;
}

let counter = 0;

/** Makes a namespace and a veth pair in subnet 10.77.N.0/24. */
export function makeLink(): TestLink {
  const n = (process.pid % 200) + counter++;
  const ns = `plexus-t${process.pid}-${counter}`;
  const hereDev = `pxa${n}`;
  const thereDev = `pxb${n}`;
  const subnet = `10.77.${n % 250}`;
  const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
  const link: TestLink = {
    ns,
    here: `${subnet}.1`,
    there: `${subnet}.2`,
    prefix: ['ip', 'netns', 'exec', ns],
    down: () => ip('link', 'set', hereDev, 'down'),
    up: () => ip('link', 'set', hereDev, 'up'),
    cleanup: () => {
      spawnSync('ip', ['link', 'del', hereDev]);
      spawnSync('ip', ['netns', 'del', ns]);
    },
  };
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', hereDev, 'type', 'veth', 'peer', 'name', thereDev);
    ip('link', 'set', thereDev, 'netns', ns);
    ip('addr', 'add', `${link.here}/24`, 'dev', hereDev);
    ip('link', 'set', hereDev, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${link.there}/24`, 'dev', thereDev);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', thereDev, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  } catch (e) {
    link.cleanup();
    throw e;
  }
  return link;
}
