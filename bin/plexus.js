#!/usr/bin/env node
// The CLI lives in dist/ (built by `npm install`); this file only starts it. It is
// CommonJS (bin/package.json) so that it runs before anything has used libuv's thread
// pool: the site agent sizes the pool for its work (shipping, applying and synchronous
// writes wait there) before the ES modules load, which would start it at 4 threads.
'use strict';
if (!process.env.UV_THREADPOOL_SIZE && process.argv.includes('serve')) process.env.UV_THREADPOOL_SIZE = '16';
import('../dist/cli/main.js').then(
  async ({ main }) => {
    process.exitCode = await main(process.argv);
  },
  (e) => {
    process.stderr.write(`plexus: cannot load the CLI (${e.message}); run npm install (E_INTERNAL)\n`);
    process.exitCode = 1;
  },
);
