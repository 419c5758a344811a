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

/**
 * A flag or setting out of its range (or missing, or in conflict): the same
 * mistake as a flag yargs refuses, so the same exit status, 2, everywhere.
 */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Thrown after a clean stop on SIGINT/SIGTERM; exit status 130 as shells expect. */
export class Interrupted extends UserError {
  constructor(message = 'interrupted') {
    super(message, 130);
    this.name = 'Interrupted';
  }
}

/** What a system error code means, in words, for the one line the user sees. */
const systemCauses: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory, a file was expected',
  ENOTDIR: 'a path component is not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  ENAMETOOLONG: 'file name too long',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
};

/** A system error while writing an output, named by the output's path (never by a temporary's). */
export class OutputError extends UserError {
  constructor(
    readonly path: string,
    readonly code: string,
  ) {
    super(`${path}: ${systemCauses[code]}`);
    this.name = 'OutputError';
  }

  /** The same error for `to`, when `from` was a temporary standing in for it. */
  renamed(from: string, to: string): OutputError {
    return this.path === from || this.path.startsWith(`${from}/`) ? new OutputError(to + this.path.slice(from.length), this.code) : this;
  }
}

/** A system error (a full disk, a read-only directory) from writing `target`, as an OutputError; other errors unchanged. */
export function outputError(err: unknown, target: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof UserError || typeof code !== 'string' || !(code in systemCauses)) return err;
  return new OutputError(target, code);
}

/** The single line shown to the user for any error. */
export function errorLine(err: unknown): string {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string' && e.code in systemCauses) {
    // Every output is written through common/atomic, which names it; a path-less error here is an input's.
    return typeof e.path === 'string' ? `${e.path}: ${systemCauses[e.code]}` : `${systemCauses[e.code]} (${e.syscall ?? 'system call'})`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `internal error: ${msg.split('\n')[0]} (set GPTMED_DEBUG=1 for the stack trace, and please report it)`;
}
