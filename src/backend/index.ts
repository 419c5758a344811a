/**
 * Choosing and starting the tfjs backend. The native packages
 * (@tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node) are optional peer
 * dependencies: their install downloads libtensorflow, so they are loaded only
 * when the user installed them. Without them, training runs on the wasm
 * backend, which ships with the package. The webgpu backend (Dawn, optional
 * dependencies) runs on any GPU with a Vulkan, Metal or D3D12 driver: see
 * webgpu.ts.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../common/errors.js';
import { registerFastKernels } from './fast-kernels.js';
import { registerMissingWasmKernels } from './missing-kernels.js';
import { adapterLabel, allowFallbackSwitch, fallbackAllowed, probeWebGpu, type WebGpuAdapter } from './webgpu.js';

export const devices = ['auto', 'gpu', 'webgpu', 'cpu', 'wasm'] as const;
export type Device = (typeof devices)[number];

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' (tfjs-node[-gpu]), 'webgpu', 'wasm' or 'cpu'. */
  backend: string;
  /** What runs the work, for people: e.g. 'tfjs-node-gpu (GPU)', 'wasm'. */
  label: string;
  /** One line: which backend, and why it was chosen. */
  line: string;
}

const gpuPackage = '@tensorflow/tfjs-node-gpu';
const cpuPackage = '@tensorflow/tfjs-node';

type NativeLoad = { ok: true } | { ok: false; why: string };

/** Import a native package if installed; it registers the 'tensorflow' backend on import. */
async function loadNative(pkg: string): Promise<NativeLoad> {
  try {
    // A variable specifier: the package is optional and has no types here.
    const specifier: string = pkg;
    await import(specifier);
    return { ok: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if ((e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && e.message.includes(pkg)) {
      return { ok: false, why: `${pkg} is not installed` };
    }
    return { ok: false, why: `${pkg} is installed but failed to load (${e.message.split('\n')[0]})` };
  }
}

/** tfjs-node's backend says whether libtensorflow found a GPU. */
function nativeUsesGpu(): boolean {
  const backend = tf.engine().findBackend('tensorflow') as unknown as { isUsingGpuDevice?: boolean } | null;
  return Boolean(backend?.isUsingGpuDevice);
}

/**
 * Start a backend with console.warn filtered for the wasm module's abort line. Emscripten binds console.warn as
 * its error printer when the module starts, and when its heap cannot grow it prints "Aborted()" through it before
 * throwing; that error reaches the trainer, which reports it as one out-of-memory line (memory-fit.ts), so the
 * bare line is noise. Every other warning passes through.
 */
async function setBackendQuietAborts(backend: string): Promise<boolean> {
  const warn = console.warn;
  console.warn = (...args: unknown[]): void => {
    if (args.length === 1 && typeof args[0] === 'string' && args[0].startsWith('Aborted(')) return;
    warn.apply(console, args);
  };
  try {
    return await tf.setBackend(backend);
  } finally {
    console.warn = warn;
  }
}

async function activate(backend: string, label: string, why: string): Promise<BackendInfo> {
  // Production mode silences tfjs's console banners (the cpu backend's "install tfjs-node" notice): this line replaces them.
  tf.enableProdMode();
  if (!(await setBackendQuietAborts(backend))) throw new UserError(`the ${label} backend failed to start; try --device wasm`);
  await tf.ready();
  if (backend === 'wasm') registerMissingWasmKernels();
  // Loaded only here: it imports tfjs-backend-webgpu, an optional dependency.
  if (backend === 'webgpu') (await import('./webgpu-kernels.js')).registerWebGpuKernels();
  // Faster kernels for the chosen backend (issue 6) are registered here, and only here.
  const fast = await registerFastKernels(backend);
  const speed = fast.enabled ? ' with native BLAS kernels' : fast.notice ? `; ${fast.notice}` : '';
  return { backend, label, line: `backend: ${label} (${why})${speed}` };
}

const installHint = `see MANUAL.md "backends" to install it`;

export interface BackendOptions {
  /**
   * Training speed (tokens/s) of the run's model on the tfjs backend now set. Given, --device auto compares
   * webgpu with the CPU path where a hardware adapter is there; without it auto keeps the CPU path.
   */
  measure?: (backend: string) => Promise<number>;
}

/**
 * Start the backend for `device`:
 *   auto:   tfjs-node-gpu if installed and it sees a GPU > webgpu on a hardware adapter where `measure` shows
 *           it faster than the CPU path > the CPU path: tfjs-node if installed, else wasm
 *   gpu:    tfjs-node-gpu with a visible GPU, else an error
 *   webgpu: a hardware WebGPU adapter (a fallback one only with GPTMED_WEBGPU_ALLOW_FALLBACK=1), else an error
 *   cpu:    tfjs-node if installed, else tfjs's pure-JavaScript cpu backend (slow)
 *   wasm:   the WebAssembly backend (offline, bundled)
 */
export async function initBackend(device: Device = 'auto', opts: BackendOptions = {}): Promise<BackendInfo> {
  switch (device) {
    case 'gpu': {
      const gpu = await loadNative(gpuPackage);
      if (!gpu.ok) throw new UserError(`--device gpu: ${gpu.why}; ${installHint}, or use --device auto`);
      if (!nativeUsesGpu()) throw new UserError(`--device gpu: ${gpuPackage} sees no GPU (it needs CUDA 11.2 and cuDNN 8.1); use --device auto`);
      return activate('tensorflow', 'tfjs-node-gpu (GPU)', 'requested with --device gpu');
    }
    case 'webgpu':
      return activateWebGpu(await requestedAdapter(), 'requested with --device webgpu');
    case 'cpu': {
      const cpu = await loadNative(cpuPackage);
      if (cpu.ok) return activate('tensorflow', 'tfjs-node (CPU)', 'requested with --device cpu');
      return activate('cpu', 'cpu (pure JavaScript, slow)', `${cpu.why}; --device wasm is much faster`);
    }
    case 'wasm':
      return activate('wasm', 'wasm', 'requested with --device wasm');
    case 'auto': {
      const gpu = await loadNative(gpuPackage);
      if (gpu.ok && nativeUsesGpu()) return activate('tensorflow', 'tfjs-node-gpu (GPU)', `auto: ${gpuPackage} sees a GPU`);
      const cpu = await cpuPath(gpu);
      return autoWebGpuOrCpu(cpu, opts.measure);
    }
  }
}

/** A backend to activate: what runs, and why. */
export interface Choice {
  backend: string;
  label: string;
  why: string;
}

/** What --device auto runs on without a GPU: tfjs-node-gpu's CPU kernels, tfjs-node, or wasm. */
async function cpuPath(gpu: NativeLoad): Promise<Choice> {
  if (gpu.ok) return { backend: 'tensorflow', label: 'tfjs-node-gpu (CPU)', why: `auto: ${gpuPackage} sees no GPU, running on its CPU kernels` };
  const cpu = await loadNative(cpuPackage);
  if (cpu.ok) return { backend: 'tensorflow', label: 'tfjs-node (CPU)', why: `auto: ${gpu.why}; ${cpuPackage} found` };
  return { backend: 'wasm', label: 'wasm', why: `auto: ${gpu.why}; ${cpu.why}; ${installHint} for a faster native backend` };
}

/** The adapter --device webgpu runs on, or a one-line error saying why there is none. */
async function requestedAdapter(): Promise<WebGpuAdapter> {
  const cpuHint = '--device auto uses the CPU path';
  const probe = await probeWebGpu();
  if (!probe.ok) throw new UserError(`--device webgpu: ${probe.why}; ${cpuHint}`);
  if (probe.adapter.fallback && !fallbackAllowed()) {
    throw new UserError(
      `--device webgpu: only a fallback adapter, ${adapterLabel(probe.adapter)}, was found: no GPU; ${cpuHint} ` +
        `(${allowFallbackSwitch}=1 runs on it anyway, for correctness checks only)`,
    );
  }
  return probe.adapter;
}

function activateWebGpu(adapter: WebGpuAdapter, why: string): Promise<BackendInfo> {
  return activate('webgpu', `webgpu on ${adapterLabel(adapter)}`, why);
}

const rate = (tokensPerSec: number): string => `${Math.round(tokensPerSec).toLocaleString('en-US')} tokens/s`;

/**
 * --device auto past tfjs-node-gpu: webgpu where a hardware adapter is there and a short measurement of the
 * run's model (`measure`) finds it faster than the CPU path; else the CPU path, saying why not webgpu.
 */
async function autoWebGpuOrCpu(cpu: Choice, measure: BackendOptions['measure']): Promise<BackendInfo> {
  const probe = await probeWebGpu();
  const useCpu = (webgpuWhy: string): Promise<BackendInfo> => activate(cpu.backend, cpu.label, `${cpu.why}; webgpu: ${webgpuWhy}`);
  if (!probe.ok) return useCpu(probe.why);
  const label = adapterLabel(probe.adapter);
  if (probe.adapter.fallback) return useCpu(`only a fallback adapter, ${label}`);
  if (!measure) return useCpu(`${label} found but not measured for this command (--device webgpu uses it)`);
  return fasterOfWebGpuAndCpu(cpu, probe.adapter, measure);
}

/**
 * Measure the run's model on the CPU path and on webgpu, and start the faster; the line gives both figures.
 * Exported for the tests (CI has no hardware adapter to reach it through auto).
 */
export async function fasterOfWebGpuAndCpu(cpu: Choice, adapter: WebGpuAdapter, measure: (backend: string) => Promise<number>): Promise<BackendInfo> {
  await activate(cpu.backend, cpu.label, cpu.why);
  const cpuSpeed = await measureOrFailure(measure, cpu.backend);
  await activateWebGpu(adapter, 'measuring');
  const gpuSpeed = await measureOrFailure(measure, 'webgpu');
  const figures = `measured ${shown(gpuSpeed)} on webgpu vs ${shown(cpuSpeed)} on ${cpu.label} for this model`;
  if (typeof gpuSpeed === 'string') return activate(cpu.backend, cpu.label, `${cpu.why}; webgpu: ${adapterLabel(adapter)} failed (${figures})`);
  if (typeof cpuSpeed === 'string') return activateWebGpu(adapter, `auto: a hardware adapter, ${figures}`);
  if (gpuSpeed > cpuSpeed) return activateWebGpu(adapter, `auto: a hardware adapter, ${figures}`);
  return activate(cpu.backend, cpu.label, `${cpu.why}; webgpu: ${adapterLabel(adapter)} is slower for this model (${figures})`);
}

/** Tokens/s, or why the measurement failed on that backend (e.g. out of memory): the first line of its error. */
async function measureOrFailure(measure: (backend: string) => Promise<number>, backend: string): Promise<number | string> {
  try {
    return await measure(backend);
  } catch (err) {
    return `failed: ${(err as Error).message.split('\n')[0]}`;
  }
}

const shown = (speed: number | string): string => (typeof speed === 'string' ? speed : rate(speed));
