import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where package.json, configs/ and data/ live), from src/ or dist/ alike. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A file under configs/. */
export function configPath(name: string): string {
  return path.join(packageRoot, 'configs', name);
}
