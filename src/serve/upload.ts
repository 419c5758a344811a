/**
 * A data upload: multipart/form-data with a file field `file` (streamed to disk, never held in memory) and
 * an optional field `config` (JSON, as text or as a file). POST /v1/jobs and POST /v1/datasets/preview
 * take the same form. The caller owns the written file: it moves it or removes it.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export interface Upload {
  /** Where the file was written ('' once the caller has moved it). */
  file: string;
  /** The client's name for it. */
  filename: string;
  bytes: number;
  configText?: string;
}

const FIELDS = 'takes `file` (the data file) and `config` (JSON)';

/** Read the form into `dest`; on any refusal nothing is left on disk. */
export async function receiveUpload(request: FastifyRequest, dest: string, route: string, maxUploadMb: number): Promise<Upload> {
  if (!request.isMultipart()) {
    throw new ApiError(400, `file: ${route} takes multipart/form-data with a field \`file\` (the data) and a field \`config\` (JSON)`, 'file', 'invalid_request_error', 'missing_file');
  }
  const upload: Upload = { file: '', filename: '', bytes: 0 };
  try {
    for await (const part of request.parts()) {
      if (part.fieldname === 'config') {
        // A text field, or a file (curl -F config=@config.json).
        upload.configText = part.type === 'file' ? (await part.toBuffer()).toString('utf8') : String(part.value);
      } else if (part.fieldname === 'file' && part.type === 'file') {
        upload.file = dest;
        upload.filename = part.filename;
        await pipeline(part.file, fs.createWriteStream(dest, { flags: 'wx' }));
        upload.bytes = fs.statSync(dest).size;
      } else {
        if (part.type === 'file') part.file.resume();
        throw new ApiError(400, `${part.fieldname}: unknown field; ${route} ${FIELDS}`, part.fieldname, 'invalid_request_error', 'unknown_field');
      }
    }
    if (!upload.file) throw new ApiError(400, 'file: missing; send the data file as the multipart file field `file`', 'file', 'invalid_request_error', 'missing_file');
    return upload;
  } catch (err) {
    if (upload.file) fs.rmSync(upload.file, { force: true });
    if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
      throw new ApiError(413, `file: larger than this server takes (--max-upload-mb ${maxUploadMb})`, 'file', 'invalid_request_error', 'file_too_large');
    }
    throw err;
  }
}
