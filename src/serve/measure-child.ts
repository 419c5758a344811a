/**
 * A child process of gptmed-serve's Estimator: measures the trainer's speed for one SpeedProbe (argv[2],
 * JSON) on the device the job would train on (argv[3]) and prints `{"tokensPerSec": N}`. A child, so the server's event
 * loop keeps answering while the steps run.
 */
import { initBackend, type Device } from '../backend/index.js';
import { measureTrainingSpeed, type SpeedProbe } from '../train/speed.js';

const probe = JSON.parse(process.argv[2] ?? '') as SpeedProbe;
const speed = await measureTrainingSpeed(probe, await initBackend((process.argv[3] ?? 'auto') as Device));
process.stdout.write(`${JSON.stringify({ tokensPerSec: speed.tokensPerSec })}\n`);
