/** Declares `plexus serve` and `plexus jobs` (run by ../commands/serve.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/serve.js');

/** Registers `serve`: the site agent. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run the site agent of the home: owns its pairs, runs background jobs, serves volumes over NBD; CLI commands ask it while it runs')
    .option('--nbd <host:port>', 'serve NBD over TCP (loopback only unless --allow-remote or TLS)')
    .option('--nbd-socket <path>', 'serve NBD over a Unix socket')
    .option('--listen <host:port>', 'listen for remote-replication peers (authenticated by the home key: plexus remote key)')
    .option('--site <name>', "this site's name in peer handshakes and logs (default host:home)")
    .option('--allow-remote', 'let --nbd listen on a non-loopback address without TLS')
    .option('--tls-certificates <dir>', 'NBD over TLS with x509: DIR holds server-cert.pem, server-key.pem, ca-cert.pem (docs/nbd-tls.md)')
    .option('--tls-verify-peer', 'with --tls-certificates: clients must present a certificate signed by the CA')
    .option('--tls-psk <file>', 'NBD over TLS with pre-shared keys: a psktool file of username:hexkey lines')
    .option('--tls <mode>', 'with credentials: require (clients without TLS are refused) or on (offered)', 'require')
    .option('--detach', 'run in the background (pid file and log in the home)')
    .option('--log-file <file>', 'append the JSON log lines here instead of stderr')
    .option('--status', 'print the running agent of the home, if any, and exit')
    .option('--stop', 'stop the running agent of the home (as SIGTERM does) and wait for it')
    .option('--json', 'with --status: print JSON')
    .action(lazy(load, (m) => m.runServe));
}

/** Registers `jobs`: the agent's jobs. */
export function jobsCommand(): Command {
  const cmd = new Command('jobs')
    .description("the agent's jobs: copies, resyncs, fills, backups and restores it runs")
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runJobsList));
  cmd
    .command('cancel <id>')
    .description('cancel a running job (it stops between chunks; a resync resumes later from where it stopped)')
    .action(lazy(load, (m) => m.runJobsCancel));
  return cmd;
}
