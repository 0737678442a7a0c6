// Micro-benchmarks of the library's hot calls through N-API, with tinybench.
// Run: npm run bench:micro   (after npm install). Results: bench/results/micro-*.json
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { describeMachine } from '../dist/bench/machine.js';
import { copyVolume, DirtyBitmap, Home, VolumeStore } from '../dist/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-micro-'));
try {
  const store = new VolumeStore(Home.open(dir));
  const size = 256 << 20;
  const vol = store.create('micro', { size });
  const dst = store.create('micro-dst', { size: 64 << 20 });
  const small = store.create('micro-src', { size: 64 << 20 });
  await vol.fill(0, size, { seed: 1 });
  await small.fill(0, 64 << 20, { seed: 2 });
  const bitmap = DirtyBitmap.create(path.join(dir, 'micro.bitmap'), size, { granularity: 64 << 10 });
  const page = Buffer.alloc(4096, 0x42);
  let at = 0;
  const next = () => {
    at = (at + 1_234_567) % (size - 4096);
    return at & ~4095;
  };

  const bench = new Bench({ time: 1000 });
  bench
    .add('volume.read 4 KiB', () => vol.read(next(), 4096))
    .add('volume.write 4 KiB', () => vol.write(next(), page))
    .add('bitmap.mark 4 KiB (N-API call)', () => bitmap.mark(next(), 4096))
    .add('copyVolume 64 MiB (no fsync)', async () => {
      await copyVolume(small, dst, { sync: false });
    });
  await bench.run();
  const rows = bench.tasks.map((t) => ({
    task: t.name,
    // latency figures are in milliseconds; ops/s is derived from the median latency
    'ops/s': Math.round(1000 / (t.result?.latency?.p50 ?? Infinity)),
    'p50 (µs)': Number(((t.result?.latency?.p50 ?? 0) * 1000).toFixed(2)),
    'p99 (µs)': Number(((t.result?.latency?.p99 ?? 0) * 1000).toFixed(2)),
    samples: t.result?.latency?.samplesCount ?? 0,
  }));
  console.table(rows);
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  fs.mkdirSync(out, { recursive: true });
  const date = new Date().toISOString();
  const file = path.join(out, `micro-${date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ benchmark: 'micro', date, machine: describeMachine(), rows }, null, 2)}\n`);
  console.log(`result: ${file}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
