#!/usr/bin/python3
"""Read TensorBoard event files independently of gptmed's writer.

Compiles TensorFlow's event.proto/summary.proto (vendored in
test/fixtures/train/proto, via TensorBoard) with protoc, checks each TFRecord's
length and masked CRC32C with the CRC implemented here, and prints the events
as JSON lines: {"step", "wall_time", and "file_version", "session_log" or "scalars"}.
Needs Debian's protobuf-compiler and python3-protobuf.
Usage: read_events.py EVENT_FILE...
"""
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'train', 'proto')
PROTO_FILES = ['event', 'summary', 'histogram', 'tensor', 'resource_handle', 'tensor_shape', 'types']


def crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def masked_crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def load_event_class(out_dir):
    files = [f'tensorboard/compat/proto/{name}.proto' for name in PROTO_FILES]
    subprocess.run(['protoc', f'--proto_path={PROTO_ROOT}', f'--python_out={out_dir}', *files], check=True)
    for d in ['tensorboard', 'tensorboard/compat', 'tensorboard/compat/proto']:
        open(os.path.join(out_dir, d, '__init__.py'), 'a').close()
    sys.path.insert(0, out_dir)
    return importlib.import_module('tensorboard.compat.proto.event_pb2').Event


def records(path):
    with open(path, 'rb') as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack('<Q', header)
        (length_crc,) = struct.unpack('<I', data[pos + 8:pos + 12])
        if masked_crc32c(header) != length_crc:
            raise SystemExit(f'{path}: bad length CRC at byte {pos}')
        body = data[pos + 12:pos + 12 + length]
        (body_crc,) = struct.unpack('<I', data[pos + 12 + length:pos + 16 + length])
        if len(body) != length or masked_crc32c(body) != body_crc:
            raise SystemExit(f'{path}: bad data CRC at byte {pos}')
        yield body
        pos += 16 + length


def main():
    with tempfile.TemporaryDirectory() as tmp:
        Event = load_event_class(tmp)
        for path in sys.argv[1:]:
            for body in records(path):
                event = Event()
                event.ParseFromString(body)
                out = {'file': os.path.basename(path), 'step': event.step, 'wall_time': event.wall_time}
                what = event.WhichOneof('what')
                if what == 'file_version':
                    out['file_version'] = event.file_version
                elif what == 'session_log':
                    out['session_log'] = event.session_log.SessionStatus.Name(event.session_log.status)
                elif what == 'summary':
                    out['scalars'] = {v.tag: v.simple_value for v in event.summary.value}
                else:
                    raise SystemExit(f'{path}: unexpected event kind {what}')
                print(json.dumps(out))


main()
