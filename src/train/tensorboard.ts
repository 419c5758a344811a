/**
 * TensorBoard event files: TFRecord framing (length, masked CRC32C of the
 * length, Event proto bytes, masked CRC32C of the bytes) around Event and
 * Summary protos encoded with protobufjs. The message definitions below are
 * the subset of TensorFlow's event.proto and summary.proto that scalars use,
 * with TensorFlow's field numbers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { outputError } from '../common/errors.js';

const eventProto = `
syntax = "proto3";
package tensorflow;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}
message SessionLog {
  enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  SessionStatus status = 1;
  string checkpoint_path = 2;
  string msg = 3;
}
message Summary {
  message Value {
    string tag = 1;
    oneof value { float simple_value = 2; }
  }
  repeated Value value = 1;
}
`;

const Event = protobuf.parse(eventProto).root.lookupType('tensorflow.Event');

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    // Castagnoli polynomial, reflected.
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add a constant, so CRCs of CRCs stay well distributed. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** Writes one events.out.tfevents.* file under `dir`; each run (and each resume) starts a new file. */
export class EventWriter {
  readonly file: string;
  private fd: number | null;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}.${process.pid}`);
    this.fd = fs.openSync(this.file, 'a');
    this.write({ fileVersion: 'brain.Event:2' }, 0);
  }

  /** Scalars for one step, e.g. {'train/loss': 3.2}. */
  scalars(step: number, values: Record<string, number>): void {
    const value = Object.entries(values).map(([tag, simpleValue]) => ({ tag, simpleValue }));
    this.write({ summary: { value } }, step);
  }

  /**
   * Mark a restart at `step`: TensorBoard drops events of earlier files at
   * this step and later (those of the interrupted run after its checkpoint).
   */
  sessionStart(step: number): void {
    this.write({ sessionLog: { status: 1 } }, step);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private write(what: Record<string, unknown>, step: number): void {
    if (this.fd === null) return;
    const bytes = Event.encode(Event.fromObject({ wallTime: Date.now() / 1000, step, ...what })).finish();
    try {
      fs.writeSync(this.fd, tfRecord(bytes));
    } catch (err) {
      throw outputError(err, this.file); // a full disk names the event file
    }
  }
}
