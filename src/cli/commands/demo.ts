/** `plexus demo`: the main job end to end on the storage home. */
import { Command } from 'commander';
import { runDemo } from '../../demo/demo.js';
import { homeOf } from '../context.js';
import { progressBar } from '../render/progress.js';

/** Registers the demo command. */
export function demoCommand(): Command {
  return new Command('demo')
    .description('mirror a volume, split it, back the split image up to tape, restore it and resync, verifying every step')
    .option('--size <size>', 'demo volume size', '128M')
    .action(async (o: { size: string }, c: Command) => {
      const home = homeOf(c);
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
    });
}
