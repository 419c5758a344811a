/** Shared by the tokenizer benchmarks: run a command, measuring wall time and peak RSS (VmHWM, polled from /proc). */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface Measured {
  seconds: number;
  /** User + system CPU seconds of the process (all its threads), as last polled. */
  cpuSeconds: number;
  peakMiB: number;
}

export function measure(cmd: string, args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    let peakKiB = 0;
    let ticks = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
        const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks = Number(fields[11]) + Number(fields[12]);
      } catch {
        // The process has just exited.
      }
    }, 5);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${cmd} exited with ${code}: ${stderr}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, cpuSeconds: ticks / 100, peakMiB: peakKiB / 1024 });
    });
  });
}
