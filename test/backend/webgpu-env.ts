/**
 * The environment the webgpu tests run in. CI machines have no GPU: Dawn then finds an adapter only through
 * SwiftShader, the CPU Vulkan driver Debian's chromium package ships (.ci/run installs chromium and libvulkan1),
 * a fallback adapter, which --device webgpu accepts only with GPTMED_WEBGPU_ALLOW_FALLBACK=1. A VK_ICD_FILENAMES
 * already set (a GPU's driver) is kept. Set before the backend starts: Dawn reads them when it loads.
 */
import * as os from 'node:os';
import { allowFallbackSwitch } from '../../src/backend/webgpu.js';

export const swiftShaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function useSwiftShaderUnlessAGpuIsSet(): void {
  process.env.VK_ICD_FILENAMES ??= swiftShaderIcd;
  process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
  process.env[allowFallbackSwitch] = '1';
}
