#!/usr/bin/env node
/**
 * Installs the system tools Plexus needs besides Node.js and Rust, so that `npm install`
 * (through the "prepare" script) sets a fresh machine up by itself: rsync, the peer
 * `plexus bench resync` compares against, strace, with which tests observe the fsyncs
 * and locks of real commands, and the NBD clients the plexus-nbd tests drive. Only as root with apt-get: anywhere else it prints one
 * warning line and leaves the machine alone. Never fails the install.
 */
import { spawnSync } from 'node:child_process';

/** Tools and the Debian package that provides each. */
const TOOLS = [
  { command: 'rsync', pkg: 'rsync', why: 'plexus bench resync compares against it' },
  { command: 'strace', pkg: 'strace', why: 'tests observe the fsyncs and locks of real commands with it' },
  { command: 'qemu-io', pkg: 'qemu-utils', why: 'the NBD server tests drive qemu-io and qemu-img against it' },
  { command: 'nbdinfo', pkg: 'libnbd-bin', why: 'the NBD server tests drive nbdinfo and nbdcopy against it' },
];

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const warn = (msg) => process.stderr.write(`ensure-tools: ${msg}\n`);

const missing = TOOLS.filter((t) => !has(t.command));
if (missing.length > 0) {
  const names = missing.map((t) => t.command).join(', ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (process.platform !== 'linux' || !isRoot || !has('apt-get')) {
    warn(`${names} not found and not installable here (needs root and apt-get); install it by hand (${missing.map((t) => t.why).join('; ')})`);
  } else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
    if (!run(['update', '-qq']) || !run(['install', '-y', '-qq', ...missing.map((t) => t.pkg)])) {
      warn(`apt-get could not install ${missing.map((t) => t.pkg).join(', ')}; install it by hand`);
    } else {
      for (const t of missing) if (!has(t.command)) warn(`${t.command} still not found after installing ${t.pkg}`);
    }
  }
}
