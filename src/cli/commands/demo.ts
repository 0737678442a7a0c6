/** `plexus demo`: the main job end to end on the storage home (declared in ../tree/demo.ts). */
import { runDemo } from '../../demo/demo.js';
import { type GlobalOptions, homeOf } from '../context.js';
import { progressBar } from '../render/progress.js';

/** `demo`: creates the home when it is missing. */
export async function runDemoCommand(o: GlobalOptions & { size: string }): Promise<void> {
  const home = homeOf(o, { create: true });
  let bar = progressBar('demo');
  const summary = await runDemo(home, {
    size: o.size,
    log: (line) => {
      bar.stop();
      process.stdout.write(`${line}\n`);
    },
    onProgress: (e) => {
      bar.callback(e);
    },
    onStage: (name) => {
      bar.stop();
      bar = progressBar(name);
    },
  });
  bar.stop();
  process.stdout.write(`demo complete: ${summary.verified} checks verified in ${home.dir}\n`);
}
