#!/usr/bin/env node
// The CLI lives in dist/ (built by `npm install`); this file only starts it. It is
// CommonJS (bin/package.json) so that it runs before anything has used libuv's thread
// pool, which starts at 4 threads and is sized once, when first used: the site agent and
// the job verbs size it for their work here, before the ES modules load.
'use strict';
if (!process.env.UV_THREADPOOL_SIZE) {
  const size = poolSize(process.argv.slice(2));
  if (size !== undefined) process.env.UV_THREADPOOL_SIZE = String(size);
}
import('../dist/cli/main.js').then(
  async ({ main }) => {
    process.exitCode = await main(process.argv);
  },
  (e) => {
    process.stderr.write(`plexus: cannot load the CLI (${e.message}); run npm install (E_INTERNAL)\n`);
    process.exitCode = 1;
  },
);

/**
 * The pool a command needs, or undefined for libuv's 4. The agent (`serve`) ships,
 * applies and writes synchronously there. A backup stream holds a thread for its whole
 * copy-device run and another for each cartridge closing in the background, so a job
 * verb gets 3 per stream asked (`--streams`, default 2) and room for restores and
 * catalog work, at least 16: with 4 threads and 4 streams, every thread is held by a
 * run and a cartridge's close waits for one to end. docs/backup-manager.md, "Thread pool".
 */
function poolSize(args) {
  // The words of the command, without global options' values (`--home DIR`, `--host NAME`).
  const words = args.filter((a, i) => !a.startsWith('-') && args[i - 1] !== '--home' && args[i - 1] !== '--host');
  if (words.includes('serve')) return 16;
  const [verb, sub, third] = words;
  const job =
    (verb === 'backup' && (sub === 'run' || (sub === 'schedule' && third === 'run-due'))) || verb === 'restore' || (verb === 'catalog' && sub === 'rebuild') || (verb === 'remote' && sub === 'backup');
  if (!job) return undefined;
  const at = args.findIndex((a) => a === '--streams' || a.startsWith('--streams='));
  const given = at < 0 ? undefined : args[at].startsWith('--streams=') ? args[at].slice('--streams='.length) : args[at + 1];
  const streams = Math.min(Math.max(Number.parseInt(given ?? '2', 10) || 2, 1), 16);
  return Math.max(16, 3 * streams + 4);
}
