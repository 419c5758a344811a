/** gptmed-serve: flags in, startServer() out; SIGINT/SIGTERM close it (open streams end, a running job saves and stops), exit 0. */
import { devices, type Device } from '../backend/index.js';
import { serveDefaults, startServer } from '../serve/server.js';
import { defineCommand } from './command.js';

const d = serveDefaults;

export const serveCommand = defineCommand({
  builder: (y) =>
    y
      .option('runs-dir', { type: 'string', default: d.runsDir, describe: 'every run directory under it is a model (its id: the directory name); jobs write theirs here' })
      .option('checkpoint', { type: 'string', array: true, default: [] as string[], describe: 'also serve this run or step directory (repeatable)' })
      .option('host', { type: 'string', default: d.host, describe: 'address to bind; anything but loopback needs --api-key' })
      .option('port', { type: 'number', default: d.port, describe: 'port to listen on (0: a free one)' })
      .option('api-key', { type: 'string', describe: 'require Authorization: Bearer KEY on every /v1 route' })
      .option('max-concurrent', { type: 'number', default: d.maxConcurrent, describe: 'generations at once; more wait in a bounded queue, then 429' })
      .option('max-upload-mb', { type: 'number', default: d.maxUploadMb, describe: 'largest data file a job may upload' })
      .option('device', { choices: devices, default: 'auto' as Device, describe: 'tfjs backend the models generate on (jobs take their own)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no request log' }),
  handler: async (args) => {
    const { app, url, backend } = await startServer({
      runsDir: args.runsDir,
      checkpoints: args.checkpoint,
      host: args.host,
      port: args.port,
      apiKey: args.apiKey,
      maxConcurrent: args.maxConcurrent,
      maxUploadMb: args.maxUploadMb,
      logger: !args.quiet,
      device: args.device,
    });
    process.stderr.write(`gptmed-serve: ${backend.line}\n`);
    process.stderr.write(`gptmed-serve: listening on ${url} (models from ${args.runsDir}; OpenAI base URL ${url}/v1)\n`);
    const stop = (signal: NodeJS.Signals): void => {
      process.stderr.write(`gptmed-serve: ${signal}: closing (open streams end, a running job saves a checkpoint)\n`);
      void app.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  },
  examples: [
    ['gptmed-serve --runs-dir runs', 'every run under runs/ on http://127.0.0.1:8080/v1'],
    ['gptmed-serve --checkpoint checkpoints/default --port 9000', 'one model, another port'],
    ['gptmed-serve --host 0.0.0.0 --api-key "$KEY"', 'reachable from other machines, with a key'],
  ],
});
