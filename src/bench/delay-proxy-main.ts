/**
 * Runs src/bench/delay-proxy.ts as its own process (`node dist/bench/delay-proxy-main.js
 * TARGET MS`): prints `listening ADDRESS` and serves until killed, so a benchmark or test
 * that blocks its own event loop still has a working link.
 */
import { startDelayProxy } from './delay-proxy.js';

const [target, ms] = process.argv.slice(2);
const proxy = await startDelayProxy(target!, Number(ms));
process.stdout.write(`listening ${proxy.address}\n`);
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
