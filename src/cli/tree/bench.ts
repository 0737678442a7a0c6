/** Declares `plexus bench copy|resync|backup|disk|chunked|nbd|replay|replicate|catalog|scale|restore|split|model|startup` (run by ../commands/bench.ts). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FRACTIONS, DEFAULT_GRANULARITIES } from '../../bench/defaults.js';
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const DEFAULT_RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/results');
const formatGranularity = (g: number): string => (g >= 1 << 20 ? `${g / (1 << 20)}M` : `${g / 1024}K`);

const load = () => import('../commands/bench.js');

/** Registers the bench commands. */
export function benchCommand(): Command {
  const bench = new Command('bench').description('measure Plexus against its peers');
  bench
    .command('copy')
    .description('full volume copy vs dd, memcpy bandwidth, dirty-bitmap kernels')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds per contender (best and median reported)', '3')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--sparse', 'thin volumes instead: a sparse --size volume holding --data bytes, copied and paired vs cp --sparse=always and qemu-img convert')
    .option('--data <size>', 'with --sparse: bytes of data in the volume', '64M')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchCopy));
  bench
    .command('resync')
    .description('differential resync of 0.1%..100% dirty regions vs a full resync and rsync; the write path of split and mirrored primaries')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'repetitions of each case with fresh random regions (best and median reported)', '3')
    .option('--granularities <list>', 'bytes per bitmap bit, comma-separated', DEFAULT_GRANULARITIES.map(formatGranularity).join(','))
    .option('--fractions <list>', 'fractions of the regions dirtied, comma-separated (0.01 or 1%)', DEFAULT_FRACTIONS.join(','))
    .option('--writes <n>', 'random 4 KiB writes per case of the write-path measurement (0 skips it)', '50000')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--seed <n>', 'seed of the data and of the regions dirtied', '7')
    .option('--no-rsync', 'do not compare with rsync (needed when rsync is not installed)')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a chart of resync time against the fraction dirtied')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchResync));
  bench
    .command('backup')
    .description('backup and restore through a tape library vs dd and tar; spanning 1 vs 8 cartridges')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds; each ratio is the median of the per-round ratios', '5')
    .option('--cartridges <n>', 'cartridges the spanning job is spread over', '8')
    .option('--cache <mode>', 'start of every contender: drop (page cache, root), fadvise (the files), none (sync only), auto', 'auto')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchBackup));
  bench
    .command('disk')
    .description('backup of a dense volume to a disk library in DIR vs dd bs=1M conv=fsync to the same directory (median of per-round ratios)')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds; the ratio is the median of the per-round ratios', '3')
    .option('--dir <dir>', 'directory both write to (default: under the system temporary directory); typically on the disk a disk library would use')
    .option('--cache <mode>', 'start of every contender: drop (page cache, root), fadvise (the files), none (sync only), auto', 'auto')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchDisk));
  bench
    .command('chunked')
    .description('redundant streams: chunked EXTENDED COPY vs single-stream backup, switch-over cost, parallel copies')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds per contender (best and median reported)', '3')
    .option('--chunk <bytes>', 'bytes per segment command', '10M')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchChunked));
  bench
    .command('nbd')
    .description('the NBD data path against qemu-nbd and nbdkit file: nbdcopy both ways, 4 KiB random writes through PAIR and split primaries')
    .option('--size <size>', 'export size', '1G')
    .option('--rounds <n>', 'rounds; each ratio is the median of the per-round ratios', '3')
    .option('--random <size>', 'bytes of 4 KiB random writes per fio run', '64M')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchNbd));
  bench
    .command('replay')
    .description('sequenced replay in the core: 4 KiB and 1 MiB records shuffled within a window, applied in order, vs an in-order memcpy')
    .option('--rounds <n>', 'rounds (median reported)', '5')
    .option('--window <n>', '4 KiB records shuffled together', '64')
    .option('--window-bytes <size>', 'bytes of 1 MiB records shuffled together (one shipped batch)', '8M')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchReplay));
  bench
    .command('replicate')
    .description('remote replication between two agents on loopback vs a plain TCP copy: drain and live bursts, lag, idle sync-wait, and a 20 ms link')
    .option('--size <size>', 'bytes per burst', '1G')
    .option('--rounds <n>', 'rounds; each ratio is the median of the per-round ratios', '3')
    .option('--delay <ms>', 'one-way delay of the long link', '20')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchReplicate));
  bench
    .command('catalog')
    .description('catalog costs at scale: a synthetic catalog of 10^4 jobs and 10^6 segments; jobs, show, range-restore planning, adding a job, settling, scoped rebuild')
    .option('--jobs <n>', 'jobs in the synthetic catalog', '10000')
    .option('--segments <n>', 'segments in the synthetic catalog', '1000000')
    .option('--cartridges <n>', 'cartridges the segments lie on', '1000')
    .option('--rounds <n>', 'rounds per operation (median reported)', '7')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchCatalog));
  bench
    .command('restore')
    .description('a job restored into a volume (restore --to-volume) against the same job restored to a file, and into a mirrored primary (duplexed)')
    .option('--size <size>', 'bytes of the job', '1G')
    .option('--rounds <n>', 'rounds (the median of per-round ratios is reported)', '3')
    .option('--cache <mode>', 'auto, drop, fadvise or none: how each contender starts cold', 'auto')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchRestore));
  bench
    .command('split')
    .description('how long backup run --from-mirror keeps the application frozen, for thin primaries of growing size')
    .option('--sizes <list>', 'primary sizes, comma-separated', '1G,16G,256G')
    .option('--rounds <n>', 'split backups per size', '3')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchSplit));
  bench
    .command('scale')
    .description(
      'costs that must follow the data, not the size: checkpoint cost per GiB copied for sparse volumes of 1 GiB to 4 TiB, durable marks of 8 writers against 1, and the catalog figures (bench catalog)',
    )
    .option('--sizes <list>', 'volume sizes, comma-separated', '1G,16G,256G,4T')
    .option('--data <size>', 'data on each volume', '64M')
    .option('--mark-rounds <n>', 'rounds of the durable-mark comparison', '5')
    .option('--jobs <n>', 'jobs in the synthetic catalog (0: skip the catalog part)', '10000')
    .option('--segments <n>', 'segments in the synthetic catalog', '1000000')
    .option('--cartridges <n>', 'cartridges the segments lie on', '1000')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchScale));
  bench
    .command('model')
    .description(
      'a simulation, not I/O: nightly backups of the dirty regions of 1,000 volumes onto 25-200 drives, with per-GiB costs measured on this machine; the window needed and drive utilisation',
    )
    .option('--volumes <n>', 'volumes backed up every night', '1000')
    .option('--min-size <size>', 'smallest volume (sizes are log-uniform between the two)', '16G')
    .option('--max-size <size>', 'largest volume', '2T')
    .option('--allocated <fraction>', "fraction of a volume's size that holds data (0.6 or 60%)", '60%')
    .option('--fractions <list>', 'dirty fractions of a night, comma-separated (100% is a full backup)', '1%,2%,5%,10%,20%,50%,100%')
    .option('--drives <list>', 'drive counts, comma-separated', '25,50,100,200')
    .option('--cartridge <size>', 'cartridge capacity (a change costs the measured load/close time)', '2.5T')
    .option('--window <duration>', 'the backup window the night must fit in (8h, 7h30m, 90m, 6:00)', '8h')
    .option('--seed <n>', 'seed of the volume sizes', '7')
    .option('--costs <file.json>', 'costs to use instead of measuring: secondsPerGiB, jobOverheadSeconds, cartridgeChangeSeconds (or an earlier model result)')
    .option('--seconds-per-gib <s>', 'drive time per GiB (overrides the measured or --costs figure; with the next two, nothing is measured)')
    .option('--job-overhead <s>', 'fixed seconds per job')
    .option('--cartridge-change <s>', 'seconds per cartridge change')
    .option('--sample-size <size>', 'volume backed up to measure the costs', '256M')
    .option('--rounds <n>', 'rounds of the cost measurement (medians reported)', '5')
    .option('--cache <mode>', 'start of every measured backup: drop, fadvise, none, auto (as bench backup)', 'auto')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a chart of the window needed against the dirty fraction, a line per drive count')
    .option('--svg <file.svg>', 'the same as --plot')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(lazy(load, (m) => m.runBenchModel));
  bench
    .command('startup')
    .description('CLI start-up: plexus --version and plexus volume list vs node -e 0 (median of per-round paired ratios)')
    .option('--rounds <n>', 'rounds (each runs every contender once, in turn)', '30')
    .option('--json', 'print the result as JSON')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(
      lazy(
        () => import('../commands/bench-startup.js'),
        (m) => m.runBenchStartup,
      ),
    );
  return bench;
}
