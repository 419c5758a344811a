/**
 * The webgpu backend in Node: @tensorflow/tfjs-backend-webgpu over Dawn, Chrome's WebGPU implementation,
 * which the `webgpu` package ships prebuilt (Vulkan on Linux, Metal on macOS, D3D12 on Windows). Both are
 * optional dependencies: an install without them (or a platform without a prebuilt Dawn) still trains on
 * the CPU path, and --device webgpu then says in one line what is missing.
 *
 * Dawn also offers fallback adapters (CPU implementations such as SwiftShader): correct but far slower than
 * the CPU path, so they are refused unless GPTMED_WEBGPU_ALLOW_FALLBACK=1 (correctness checks on machines
 * without a GPU: the tests use it with SwiftShader, see MANUAL.md "backends").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Set to 1 to run --device webgpu on a fallback (CPU) adapter: for correctness checks only. */
export const allowFallbackSwitch = 'GPTMED_WEBGPU_ALLOW_FALLBACK';

const dawnPackage = 'webgpu';
const backendPackage = '@tensorflow/tfjs-backend-webgpu';

/** What the adapter says about itself (WebGPU's GPUAdapterInfo), and whether it is a fallback adapter. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  fallback: boolean;
}

export type WebGpuProbe = { ok: true; adapter: WebGpuAdapter } | { ok: false; why: string };

/** The adapter for people: "NVIDIA H200 [nvidia hopper]", "SwiftShader driver 5.0.0 [google swiftshader, CPU]". */
export function adapterLabel(a: WebGpuAdapter): string {
  const name = a.description || a.device || a.architecture || 'unnamed adapter';
  const detail = [[a.vendor, a.architecture].filter((s) => s && s !== name).join(' '), a.fallback ? 'CPU' : ''].filter(Boolean).join(', ');
  return detail ? `${name} [${detail}]` : name;
}

export function fallbackAllowed(): boolean {
  return process.env[allowFallbackSwitch] === '1';
}

/** Where the Vulkan loader looks for drivers (ICD files) on Linux, besides the variables that name them. */
const vulkanIcdDirs = ['/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

/**
 * Why Dawn cannot find a Vulkan driver on this Linux machine, or null where one may be there. Checked before
 * loading Dawn: without a driver it prints a Vulkan warning with a native stack on every start.
 */
function vulkanDriverProblem(): string | null {
  if (process.platform !== 'linux') return null;
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return null;
  const home = process.env.XDG_DATA_HOME ?? path.join(process.env.HOME ?? '/', '.local/share');
  const dirs = [...vulkanIcdDirs, path.join(home, 'vulkan/icd.d')];
  const hasIcd = dirs.some((dir) => {
    try {
      return fs.readdirSync(dir).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
  return hasIcd ? null : 'no Vulkan driver is installed (no ICD file in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d)';
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: object;
}

/** An optional package, or why it cannot be loaded (one clause). */
export async function importOptional<T>(pkg: string): Promise<{ module: T } | { why: string }> {
  try {
    // A variable specifier: the package is an optional dependency.
    const specifier: string = pkg;
    return { module: (await import(specifier)) as T };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const notFound = e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND';
    if (notFound && e.message.includes(`'${pkg}'`)) return { why: `${pkg} is not installed (an optional dependency: npm install ${pkg})` };
    if (notFound && e.message.includes('dawn.node')) return { why: `${pkg} has no prebuilt Dawn for ${process.platform}-${process.arch}` };
    return { why: `${pkg} failed to load (${e.message.split('\n')[0]})` };
  }
}

/** Minimal WebGPU types used here (the package's own types are optional). */
interface GPU {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GPUAdapterLike | null>;
}
interface GPUAdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
}

/** Install Dawn's GPU as navigator.gpu (tfjs-backend-webgpu registers itself on import only where it exists). */
function installNavigatorGpu(dawn: DawnModule): GPU {
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const nav = (globalThis as { navigator?: object }).navigator;
  // Node 21+ has a navigator of its own (keep it, add gpu); Node 20 has none.
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return gpu;
}

let probed: Promise<WebGpuProbe> | undefined;

/**
 * Load Dawn and tfjs-backend-webgpu (once per process), and find the adapter the backend will use (the
 * high-performance one). On success the 'webgpu' backend is registered with tfjs; it starts on setBackend.
 */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<WebGpuProbe> {
  const driver = vulkanDriverProblem();
  if (driver) return { ok: false, why: driver };
  const dawn = await importOptional<DawnModule>(dawnPackage);
  if ('why' in dawn) return { ok: false, why: dawn.why };
  let adapter: GPUAdapterLike | null;
  try {
    adapter = await installNavigatorGpu(dawn.module).requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    // A broken Dawn (a driver that crashes on enumeration): say why, and let auto fall back to the CPU path.
    return { ok: false, why: `Dawn failed to start (${(err as Error).message.split('\n')[0]})` };
  }
  if (!adapter) {
    const needs = process.platform === 'linux' ? ': on Linux it needs the Vulkan loader (libvulkan1) and the GPU\'s Vulkan driver' : '';
    return { ok: false, why: `Dawn found no WebGPU adapter${needs}` };
  }
  const backend = await importOptional<object>(backendPackage);
  if ('why' in backend) return { ok: false, why: backend.why };
  // It registers 'webgpu' on import only where navigator.gpu exists: imported earlier, it never will.
  if (!tf.findBackendFactory('webgpu')) return { ok: false, why: `${backendPackage} was imported before Dawn was set up (import it through src/backend only)` };
  const info = adapter.info ?? {};
  return {
    ok: true,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    },
  };
}

let rejected = 0;
let unreported: string | null = null;

/** Count the work `device` rejects from now on (Dawn prints each; see rejectedWebGpuPrograms and takeRejection). */
export function countRejectedPrograms(device: EventTarget): void {
  device.addEventListener('uncapturederror', (event) => {
    rejected++;
    unreported ??= (event as Event & { error?: { message?: string } }).error?.message?.split('\n')[0] ?? 'no message';
  });
}

/** The first rejection since the last call (its message's first line), or null. */
export function takeRejection(): string | null {
  const message = unreported;
  unreported = null;
  return message;
}

/**
 * Programs (and allocations) the device rejected since the backend started: a rejected program's output is
 * garbage, not an exception (webgpu-kernels.ts turns the next read into one), so the tests assert this stays 0.
 */
export function rejectedWebGpuPrograms(): number {
  return rejected;
}
