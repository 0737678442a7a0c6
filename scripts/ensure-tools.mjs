#!/usr/bin/env node
/**
 * Installs the system tools Plexus needs besides Node.js and Rust, so that `npm install`
 * (through the "prepare" script) sets a fresh machine up by itself: rsync, the peer
 * `plexus bench resync` compares against; strace, with which tests observe the fsyncs
 * and locks of real commands; OpenSSL's headers and pkg-config, which the NBD server's
 * TLS builds against; the real NBD clients and peers the tests and `plexus bench nbd`
 * drive (qemu-utils, libnbd-bin and python3-libnbd's nbdsh, nbdkit, fio) and GnuTLS's tools for TLS interop.
 * Only as root with apt-get: anywhere else it prints one warning line and leaves the
 * machine alone. Never fails the install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Tools and the Debian package that provides each. */
const TOOLS = [
  { command: 'rsync', pkg: 'rsync', why: 'plexus bench resync compares against it' },
  { command: 'strace', pkg: 'strace', why: 'tests observe the fsyncs and locks of real commands with it' },
  { command: 'pkg-config', pkg: 'pkg-config', why: 'the TLS crate finds OpenSSL with it' },
  { file: '/usr/include/openssl/ssl.h', pkg: 'libssl-dev', why: 'the TLS crate builds against OpenSSL' },
  { command: 'qemu-img', pkg: 'qemu-utils', why: 'NBD tests and plexus bench nbd use qemu-io, qemu-img and qemu-nbd' },
  { command: 'nbdinfo', pkg: 'libnbd-bin', why: 'NBD tests use nbdinfo, nbdcopy and nbdfuse' },
  { command: 'nbdsh', pkg: 'python3-libnbd', why: "NBD tests send every command (CACHE, DISC, FUA writes, ...) through libnbd's shell" },
  { command: 'nbdkit', pkg: 'nbdkit', why: 'plexus bench nbd compares against nbdkit file' },
  { command: 'fio', pkg: 'fio', why: 'plexus bench nbd measures random writes with it' },
  { command: 'gnutls-cli', pkg: 'gnutls-bin', why: 'TLS tests make credentials with certtool and psktool' },
];

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const warn = (msg) => process.stderr.write(`ensure-tools: ${msg}\n`);

const present = (t) => (t.file ? existsSync(t.file) : has(t.command));
const missing = TOOLS.filter((t) => !present(t));
if (missing.length > 0) {
  const names = missing.map((t) => t.command ?? t.file).join(', ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (process.platform !== 'linux' || !isRoot || !has('apt-get')) {
    warn(`${names} not found and not installable here (needs root and apt-get); install it by hand (${missing.map((t) => t.why).join('; ')})`);
  } else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
    if (!run(['update', '-qq']) || !run(['install', '-y', '-qq', ...missing.map((t) => t.pkg)])) {
      warn(`apt-get could not install ${missing.map((t) => t.pkg).join(', ')}; install it by hand`);
    } else {
      for (const t of missing) if (!present(t)) warn(`${t.command ?? t.file} still not found after installing ${t.pkg}`);
    }
  }
}
