/**
 * JSON objects (from JSON or JSONL) to pairs, for the schemas users bring:
 * `{question, answer}` and the other known column names, Alpaca
 * `{instruction, input, output}`, `{instruction, response}`,
 * `{prompt, completion}` and chat `{messages: [{role, content}, ...]}`.
 */
import { UserError } from '../common/errors.js';
import { KNOWN_COLUMN_PAIRS } from './columns.js';
import { pairRow, textValue, type Row } from './rows.js';

export interface FieldNames {
  /** Field holding the question, instead of the detected one. */
  questionCol?: string;
  answerCol?: string;
}

type JsonObject = Record<string, unknown>;

/** Field pairs tried in order, after chat and Alpaca. */
const FIELD_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['instruction', 'response'],
  ...KNOWN_COLUMN_PAIRS.filter(([q]) => q !== 'instruction'),
];

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** The object's key matching `name`, exactly or else ignoring case. */
function findKey(obj: JsonObject, name: string): string | undefined {
  if (Object.hasOwn(obj, name)) return name;
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

/** Chat message content: a string, or OpenAI-style parts whose text parts are joined. */
function messageText(content: unknown): string | null {
  if (Array.isArray(content)) {
    const parts = content.map((p) => (isJsonObject(p) && typeof p.text === 'string' ? p.text : null));
    return parts.every((p) => p !== null) ? parts.join('\n') : null;
  }
  return textValue(content);
}

/** One pair per user turn directly followed by an assistant turn; everything else is counted. */
function chatRow(messages: unknown[]): Row {
  const row: Row = { pairs: [], skipped: [] };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const role = isJsonObject(m) && typeof m.role === 'string' ? m.role.toLowerCase() : null;
    if (role === null) {
      row.skipped.push('message without a role');
    } else if (role === 'user') {
      const next = messages[i + 1];
      if (isJsonObject(next) && next.role === 'assistant') {
        const q = messageText((m as JsonObject).content);
        const a = messageText(next.content);
        if (q === null || a === null) row.skipped.push('value is not text');
        else row.pairs.push({ question: q, answer: a });
        i++;
      } else {
        row.skipped.push('user turn without an assistant reply');
      }
    } else if (role === 'assistant') {
      row.skipped.push('assistant turn without a user turn before it');
    } else {
      row.skipped.push(`${role} turn`);
    }
  }
  return row;
}

function alpacaQuestion(instruction: unknown, input: unknown): unknown {
  const extra = textValue(input);
  const inst = textValue(instruction);
  if (inst === null || extra === null || extra.trim() === '') return instruction;
  return `${inst}\n${extra}`;
}

function unrecognised(obj: JsonObject, where: string, expected: string): UserError {
  const has = Object.keys(obj);
  return new UserError(
    `${where}: object has no recognised field (it has ${has.length ? has.map((k) => JSON.stringify(k)).join(', ') : 'no fields'}); expected ${expected}, or name the fields with --question-col and --answer-col`,
  );
}

const EXPECTED = `question/answer, q/a, instruction/output (Alpaca), instruction/response, prompt/completion, front/back, input/target or messages (chat)`;

/** The row one JSON value gives; `where` names it in errors (`file:line` or `file: element N`). */
export function recordRow(value: unknown, where: string, names: FieldNames = {}): Row {
  if (!isJsonObject(value)) throw new UserError(`${where}: expected an object, found ${describeType(value)}`);
  if (names.questionCol !== undefined || names.answerCol !== undefined) {
    const detected = detectPair(value);
    const qName = names.questionCol ?? detected?.[0];
    const aName = names.answerCol ?? detected?.[1];
    const qKey = qName === undefined ? undefined : findKey(value, qName);
    const aKey = aName === undefined ? undefined : findKey(value, aName);
    if (qKey === undefined && aKey === undefined) {
      throw unrecognised(value, where, [qName, aName].filter(Boolean).map((n) => JSON.stringify(n)).join(' and '));
    }
    return pairRow(qKey === undefined ? '' : value[qKey], aKey === undefined ? '' : value[aKey]);
  }
  const messages = findKey(value, 'messages');
  if (messages !== undefined && Array.isArray(value[messages])) return chatRow(value[messages] as unknown[]);
  const instruction = findKey(value, 'instruction');
  const output = findKey(value, 'output');
  if (instruction !== undefined && output !== undefined) {
    const input = findKey(value, 'input');
    return pairRow(alpacaQuestion(value[instruction], input === undefined ? '' : value[input]), value[output]);
  }
  const detected = detectPair(value);
  if (!detected) throw unrecognised(value, where, EXPECTED);
  const [q, a] = detected.map((n) => findKey(value, n));
  // A record with only one of the two fields is a row with an empty side, counted as skipped.
  return pairRow(q === undefined ? '' : value[q], a === undefined ? '' : value[a]);
}

/** The first known field pair the object has both of, else one it has either of. */
function detectPair(obj: JsonObject): readonly [string, string] | undefined {
  return (
    FIELD_PAIRS.find(([q, a]) => findKey(obj, q) !== undefined && findKey(obj, a) !== undefined) ??
    FIELD_PAIRS.find(([q, a]) => findKey(obj, q) !== undefined || findKey(obj, a) !== undefined)
  );
}

/** True when the object is itself one record rather than a holder of an array of records. */
export function looksLikeRecord(obj: JsonObject): boolean {
  const messages = findKey(obj, 'messages');
  if (messages !== undefined && Array.isArray(obj[messages])) return true;
  return findKey(obj, 'instruction') !== undefined || detectPair(obj) !== undefined;
}
