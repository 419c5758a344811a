/**
 * Which column (or JSON field) holds the question and which the answer:
 * detected from common names, or chosen by the user by name or 1-based index.
 */
import { UserError } from '../common/errors.js';

/** Column name pairs recognised without flags, in order of preference (case-insensitive). */
export const KNOWN_COLUMN_PAIRS: ReadonlyArray<readonly [question: string, answer: string]> = [
  ['question', 'answer'],
  ['q', 'a'],
  ['instruction', 'output'],
  ['prompt', 'completion'],
  ['front', 'back'],
  ['input', 'target'],
];

export interface ColumnChoice {
  question: number;
  answer: number;
}

/** Indexes (0-based) of the first known pair of names present in `names`, or null. */
export function detectColumns(names: readonly string[]): ColumnChoice | null {
  const lower = names.map((n) => n.trim().toLowerCase());
  for (const [q, a] of KNOWN_COLUMN_PAIRS) {
    const qi = lower.indexOf(q);
    const ai = lower.indexOf(a);
    if (qi !== -1 && ai !== -1) return { question: qi, answer: ai };
  }
  return null;
}

function listNames(names: readonly string[]): string {
  return names.map((n, i) => `${i + 1}:${JSON.stringify(n)}`).join(', ');
}

/**
 * The 0-based index named by `spec`: a column name (exact, then
 * case-insensitive) or a 1-based index. `names` is null when the table has
 * no header, and then `count` is the number of columns of the first row.
 */
export function resolveColumn(
  spec: string,
  table: { names: readonly string[] | null; count: number },
  flag: string,
  source: string,
): number {
  const { names, count } = table;
  if (names) {
    const exact = names.indexOf(spec);
    if (exact !== -1) return exact;
    const folded = names.findIndex((n) => n.trim().toLowerCase() === spec.trim().toLowerCase());
    if (folded !== -1) return folded;
  }
  if (/^[0-9]+$/.test(spec)) {
    const index = Number(spec);
    if (index >= 1 && index <= count) return index - 1;
    throw new UserError(`${source}: ${flag} ${spec}: there is no column ${spec}; the ${names ? 'table' : 'first row'} has ${count} column${count === 1 ? '' : 's'} (numbered from 1)`);
  }
  if (!names) {
    throw new UserError(`${source}: ${flag} ${JSON.stringify(spec)}: without a header, columns are chosen by number (1 to ${count})`);
  }
  throw new UserError(`${source}: ${flag}: no column ${JSON.stringify(spec)}; the columns are ${listNames(names)}`);
}

/**
 * The question and answer columns: from the flags, else detected from the
 * header, else `defaults` (1-based; the first two columns unless told) of a
 * table without a header.
 */
export function chooseColumns(
  table: { names: readonly string[] | null; count: number },
  flags: { questionCol?: string; answerCol?: string },
  source: string,
  defaults: readonly [question: number, answer: number] = [1, 2],
): ColumnChoice {
  const { names } = table;
  const detected = names ? detectColumns(names) : null;
  const pick = (spec: string | undefined, flag: string, fromHeader: number | undefined, byDefault: number): number | undefined => {
    if (spec !== undefined) return resolveColumn(spec, table, flag, source);
    return names ? fromHeader : resolveColumn(String(byDefault), table, `${flag} (default ${byDefault})`, source);
  };
  const question = pick(flags.questionCol, '--question-col', detected?.question, defaults[0]);
  const answer = pick(flags.answerCol, '--answer-col', detected?.answer, defaults[1]);
  if (question === undefined || answer === undefined) {
    const known = KNOWN_COLUMN_PAIRS.map(([q, a]) => `${q}/${a}`).join(', ');
    throw new UserError(
      `${source}: no question/answer columns recognised among ${listNames(names ?? [])}; name them with --question-col and --answer-col (recognised names: ${known})`,
    );
  }
  if (question === answer) throw new UserError(`${source}: --question-col and --answer-col name the same column`);
  return { question, answer };
}
