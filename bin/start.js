// Shared by every bin/ entry: load the compiled CLI, or say how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export async function start(name) {
  const main = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(fileURLToPath(main))) {
    process.stderr.write('gptmed: the compiled CLI is missing (dist/); run `npm install` (or `npm run build`) in the package directory\n');
    process.exit(1);
  }
  const { start: run } = await import(main.href);
  await run(name);
}
