/**
 * OpenAI's request bodies translated into gptmed's: the JSON schemas Fastify checks every body against,
 * a conversation turned into a question and earlier Q/A pairs, and OpenAI's option names mapped to
 * generate()'s. Fields of OpenAI's API that gptmed has no use for are accepted only at their neutral values
 * (what a client sends when it means "off"), so a client that sets one is told, not silently ignored.
 */
import type { QaPair } from '../convert/qa-format.js';
import { normalizeField } from '../convert/qa-format.js';
import { PRESET_NAMES, type GenerationRequest, type PresetName } from '../generate/index.js';
import { MAX_QUESTION_BYTES } from '../generate/question-size.js';
import { ApiError } from './errors.js';

/** Most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 8;
/** Most stop strings (OpenAI's limit). */
export const MAX_STOPS = 4;
/** Largest body of an inference request: a question of 1 MiB, JSON-escaped, with room to spare. */
export const INFERENCE_BODY_LIMIT = 8 << 20;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** OpenAI fields gptmed accepts only at a neutral value: the test, and the values named in the message. */
const neutral = (values: readonly Json[]): { ok: (v: unknown) => boolean; what: string } => ({
  ok: (v) => values.some((n) => JSON.stringify(n) === JSON.stringify(v)),
  what: values.map((n) => JSON.stringify(n)).join(' or '),
});
const anything = { ok: () => true, what: 'any' };

const COMMON_NEUTRAL = {
  frequency_penalty: neutral([null, 0]),
  presence_penalty: neutral([null, 0]),
  logit_bias: neutral([null, {}]),
  // Identifiers and bookkeeping that change nothing about the answer.
  user: anything,
  metadata: anything,
  store: neutral([null, false]),
  service_tier: neutral([null, 'auto', 'default']),
  prompt_cache_key: anything,
  safety_identifier: anything,
};

const CHAT_NEUTRAL = {
  ...COMMON_NEUTRAL,
  logprobs: neutral([null, false]),
  top_logprobs: neutral([null, 0]),
  tools: neutral([null, []]),
  tool_choice: neutral([null, 'none', 'auto']),
  parallel_tool_calls: anything,
  functions: neutral([null, []]),
  function_call: neutral([null, 'none', 'auto']),
  response_format: neutral([null, { type: 'text' }]),
  modalities: neutral([null, ['text']]),
  reasoning_effort: neutral([null]),
  verbosity: neutral([null]),
  audio: neutral([null]),
  prediction: neutral([null]),
  web_search_options: neutral([null]),
};

const TEXT_NEUTRAL = {
  ...COMMON_NEUTRAL,
  logprobs: neutral([null, 0]),
  echo: neutral([null, false]),
  suffix: neutral([null, '']),
  best_of: neutral([null, 1]),
};

const nullable = (schema: { type: string } & Record<string, unknown>): Record<string, unknown> => ({ ...schema, type: [schema.type, 'null'] });

/** The options both routes share: OpenAI's names, and gptmed's own sampler settings. */
const optionProperties = {
  model: { type: 'string', minLength: 1 },
  max_tokens: nullable({ type: 'integer', minimum: 1 }),
  max_completion_tokens: nullable({ type: 'integer', minimum: 1 }),
  temperature: nullable({ type: 'number', minimum: 0 }),
  top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
  seed: nullable({ type: 'integer' }),
  n: nullable({ type: 'integer', minimum: 1, maximum: MAX_CHOICES }),
  stop: {
    anyOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: MAX_STOPS },
      { type: 'null' },
    ],
  },
  stream: nullable({ type: 'boolean' }),
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } }, additionalProperties: false },
  // gptmed's sampler, under the names of gptmed-generate's flags.
  top_k: { type: 'integer', minimum: 0 },
  repetition_penalty: { type: 'number', exclusiveMinimum: 0 },
  no_repeat_ngram: { type: 'integer', minimum: 0 },
  preset: { type: 'string', enum: [...PRESET_NAMES] },
};

const anyValue = (names: readonly string[]): Record<string, object> => Object.fromEntries(names.map((n) => [n, {}]));

const textPart = {
  type: 'object',
  required: ['type', 'text'],
  properties: { type: { type: 'string', enum: ['text'] }, text: { type: 'string' } },
  additionalProperties: false,
};

export const ROLES = ['system', 'developer', 'user', 'assistant'] as const;

export const chatBodySchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...optionProperties,
    ...anyValue(Object.keys(CHAT_NEUTRAL)),
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: [...ROLES] },
          content: { anyOf: [{ type: 'string' }, { type: 'array', items: textPart }] },
          name: { type: 'string' },
          refusal: { type: 'null' },
        },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
} as const;

export const textBodySchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: { ...optionProperties, ...anyValue(Object.keys(TEXT_NEUTRAL)), prompt: { type: 'string' } },
  additionalProperties: false,
} as const;

export interface Message {
  role: (typeof ROLES)[number];
  content: string | Array<{ type: 'text'; text: string }>;
}

export interface OptionsBody {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  top_k?: number;
  repetition_penalty?: number;
  no_repeat_ngram?: number;
  preset?: PresetName;
  [other: string]: unknown;
}

export interface ChatBody extends OptionsBody {
  messages: Message[];
}

export interface TextBody extends OptionsBody {
  prompt: string;
}

/** 400 naming the first OpenAI field set to something gptmed does not do. */
export function checkNeutralFields(body: Record<string, unknown>, kind: 'chat' | 'text'): void {
  const table: Record<string, { ok: (v: unknown) => boolean; what: string }> = kind === 'chat' ? CHAT_NEUTRAL : TEXT_NEUTRAL;
  for (const [field, rule] of Object.entries(table)) {
    if (field in body && !rule.ok(body[field])) {
      throw new ApiError(400, `${field}: not supported by gptmed; leave it out, or send ${rule.what}`, field, 'invalid_request_error', 'unsupported_parameter');
    }
  }
}

/** What generate() is asked: the question, and the earlier pairs of the conversation. */
export interface Conversation {
  question: string;
  history: QaPair[];
}

function textOf(content: Message['content']): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('\n');
}

function checkSize(texts: readonly string[], param: string): void {
  const bytes = texts.reduce((sum, t) => sum + Buffer.byteLength(t, 'utf8'), 0);
  if (bytes > MAX_QUESTION_BYTES) {
    throw new ApiError(400, `${param}: ${bytes} bytes of text, more than any model's context could hold (at most ${MAX_QUESTION_BYTES})`, param, 'invalid_request_error', 'context_length_exceeded');
  }
}

/**
 * The last user message is the question; the user and assistant turns before it become earlier Q/A pairs,
 * oldest first (consecutive messages of one role are joined by a newline). System and developer messages
 * are left out: a model trained on Q&A pairs was never shown one.
 */
export function conversation(messages: readonly Message[]): Conversation {
  const last = messages.length - 1;
  if (messages[last].role !== 'user') {
    throw new ApiError(400, `messages[${last}].role: the last message must be the user's (its content is the question), not "${messages[last].role}"`, `messages[${last}].role`);
  }
  const turns: Array<{ role: 'user' | 'assistant'; text: string; index: number }> = [];
  messages.forEach((m, index) => {
    if (m.role !== 'user' && m.role !== 'assistant') return;
    const text = textOf(m.content);
    const prev = turns[turns.length - 1];
    if (prev?.role === m.role) prev.text += `\n${text}`;
    else turns.push({ role: m.role, text, index });
  });
  if (turns[0].role !== 'user') {
    throw new ApiError(400, `messages[${turns[0].index}].role: the conversation must begin with a user message (an assistant turn answers the user message before it)`, `messages[${turns[0].index}].role`);
  }
  checkSize(turns.map((t) => t.text), 'messages');
  const question = normalizeField(turns[turns.length - 1].text);
  if (question === '') throw new ApiError(400, `messages[${last}].content: the question is empty; ask something`, `messages[${last}].content`);
  const history: QaPair[] = [];
  for (let i = 0; i + 1 < turns.length; i += 2) history.push({ question: turns[i].text, answer: turns[i + 1].text });
  return { question, history };
}

/** The question of /v1/completions. */
export function promptQuestion(prompt: string): Conversation {
  checkSize([prompt], 'prompt');
  const question = normalizeField(prompt);
  if (question === '') throw new ApiError(400, 'prompt: the question is empty; ask something', 'prompt');
  return { question, history: [] };
}

/** OpenAI's option names to generate()'s; what the client leaves out comes from configs/generate.json (or the preset). */
export function generationRequest(body: OptionsBody): GenerationRequest & { stop: string[] } {
  const given = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
  const stop = body.stop === null || body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    preset: body.preset,
    maxNewTokens: given(body.max_completion_tokens) ?? given(body.max_tokens),
    temperature: given(body.temperature),
    topP: given(body.top_p),
    seed: given(body.seed),
    numSamples: given(body.n),
    topK: body.top_k,
    repetitionPenalty: body.repetition_penalty,
    noRepeatNgram: body.no_repeat_ngram,
    stop,
  };
}

/** OpenAI's finish_reason for gptmed's stop reason: the model or a stop string ended it, or a limit cut it. */
export function finishReason(stop: string): 'stop' | 'length' {
  return stop === 'eos' || stop === 'question' || stop === 'stop' ? 'stop' : 'length';
}
