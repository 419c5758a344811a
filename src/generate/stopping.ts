/**
 * Where an answer ends. Training ends every answer with <eos>, so a trained
 * model stops by itself; a model that instead starts the next pair (a new
 * `Q:` line, as in Q&A text) is cut there. Only the answer is ever shown.
 *
 * `answerState` turns the decoded answer tokens into the answer: leading and
 * trailing whitespace off, cut before a new `Q:` line. For streaming it also
 * tells how much of the text is already final (`settled`): trailing
 * whitespace, a trailing `\nQ` that may become a new question, and a trailing
 * U+FFFD (an incomplete UTF-8 byte sequence) are held back until the next
 * token decides. `AnswerStream` feeds the settled text out once; `cutAtStop`
 * applies the caller's stop strings.
 */

/** Why an answer ended. */
export type StopReason =
  /** the model emitted the end-of-answer token */
  | 'eos'
  /** the model began a new `Q:` line (the next pair) */
  | 'question'
  /** --max-new-tokens reached */
  | 'length'
  /** the model's context window is full */
  | 'context'
  /** the answer reached one of the caller's stop strings (cut before it) */
  | 'stop'
  /** the caller's abort signal fired (the answer so far is kept) */
  | 'aborted';

const NEW_QUESTION = /\n[ \t]*Q:/;
const PENDING_QUESTION = /\n[ \t]*Q?$/;
const INCOMPLETE_CHAR = /\uFFFD+$/;

export interface AnswerState {
  /** The answer so far (final once `stopped`). */
  text: string;
  /** The prefix of `text` that no later token can change. */
  settled: string;
  /** True when a new `Q:` line began: the answer is complete. */
  stopped: boolean;
}

/** The answer contained in `decoded`, the decoded text of the answer tokens so far. */
export function answerState(decoded: string): AnswerState {
  let text = decoded.replace(/^\s+/u, '');
  const q = NEW_QUESTION.exec(text);
  if (q) return { text: text.slice(0, q.index).trimEnd(), settled: text.slice(0, q.index).trimEnd(), stopped: true };
  text = text.trimEnd();
  const settled = text.replace(PENDING_QUESTION, '').replace(INCOMPLETE_CHAR, '').trimEnd();
  return { text, settled, stopped: false };
}

/**
 * Feeds streamed text out exactly once: `push` returns the newly settled
 * characters for a decoded answer so far; at the end, `finish` returns what
 * was held back. The concatenation of everything returned is the answer.
 */
export class AnswerStream {
  private shown = '';

  push(state: AnswerState): string {
    return this.advance(state.settled);
  }

  finish(answer: string): string {
    return this.advance(answer);
  }

  private advance(target: string): string {
    // A tokenizer may re-decode earlier text differently (byte pieces
    // completing a character); text already shown is never taken back.
    if (!target.startsWith(this.shown)) return '';
    const more = target.slice(this.shown.length);
    this.shown = target;
    return more;
  }
}

/**
 * `state` with the caller's stop strings (none empty) applied: cut before
 * the first one that occurs (then `stopped`), else with `settled` held back
 * from any tail that could still grow into one, so streamed text never shows
 * a stop string.
 */
export function cutAtStop(state: AnswerState, stops: readonly string[]): AnswerState {
  let at = -1;
  for (const stop of stops) {
    const i = state.text.indexOf(stop);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  if (at >= 0) {
    const text = state.text.slice(0, at).trimEnd();
    return { text, settled: text, stopped: true };
  }
  let hold = state.text.length;
  for (const stop of stops) {
    for (let len = Math.min(stop.length - 1, state.text.length); len > 0; len--) {
      if (state.text.endsWith(stop.slice(0, len))) {
        hold = Math.min(hold, state.text.length - len);
        break;
      }
    }
  }
  return { ...state, settled: state.settled.slice(0, hold) };
}
