/**
 * Errors a user can act on. Every stage throws `UserError` for bad input; the
 * CLI prints its message as one line and exits non-zero. Anything else is a
 * bug and is reported as one line too, with the stack only under GPTMED_DEBUG=1.
 */
export class UserError extends Error {
  /** Exit status: 1 for bad input or a failed run, 2 for bad usage. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** Thrown after a clean stop on SIGINT/SIGTERM; exit status 130 as shells expect. */
export class Interrupted extends UserError {
  constructor(message = 'interrupted') {
    super(message, 130);
    this.name = 'Interrupted';
  }
}

/** The single line shown to the user for any error. */
export function errorLine(err: unknown): string {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string' && typeof e.path === 'string') {
    const what: Record<string, string> = {
      ENOENT: 'no such file or directory',
      EACCES: 'permission denied',
      EISDIR: 'is a directory, a file was expected',
      ENOTDIR: 'a path component is not a directory',
      ENOSPC: 'no space left on the device',
      EEXIST: 'already exists',
    };
    return `${e.path}: ${what[e.code] ?? e.message}`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `internal error: ${msg.split('\n')[0]} (set GPTMED_DEBUG=1 for the stack trace, and please report it)`;
}
