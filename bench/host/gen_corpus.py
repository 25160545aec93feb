#!/usr/bin/env python3
"""gen_corpus.py: writes ReadRecordsResponse bodies for the Lua host benchmark (and replay
tests): each response holds N PUT records of 10 attribute columns (5 strings of ~20 bytes,
5 integers) plus an INTEGER primary key, encoded as PlainBuffer (PROTOCOL.md section 4, with
CRC-8 checksums) and wrapped in protobuf by hand (PROTOCOL.md section 2).
Usage: gen_corpus.py OUT_DIR [FILES] [RECORDS_PER_FILE]"""
import os
import struct
import sys

CRC_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    CRC_TABLE.append(c)


def crc8(crc, data):
    for b in data:
        crc = CRC_TABLE[crc ^ b]
    return crc


def cell(name, kind, value):
    """One cell with a value (PUT op): returns (bytes, cell checksum)."""
    nb = name.encode()
    if kind == "int":
        payload = struct.pack("<q", value)
        vtype = 0x0
        crc_payload = payload
    else:
        sb = value.encode()
        payload = struct.pack("<I", len(sb)) + sb
        vtype = 0x3
        crc_payload = payload
    crc = crc8(0, nb)
    crc = crc8(crc, bytes([vtype]))
    crc = crc8(crc, crc_payload)
    out = bytes([0x03, 0x04]) + struct.pack("<I", len(nb)) + nb
    out += bytes([0x05]) + struct.pack("<I", 1 + len(payload)) + bytes([vtype]) + payload
    out += bytes([0x0A, crc])
    return out, crc


def row(rid):
    out = bytearray([0x01])
    row_crc = 0
    b, c = cell("id", "int", rid)
    out += b
    row_crc = crc8(row_crc, bytes([c]))
    out.append(0x02)
    for k in range(5):
        b, c = cell("s%d" % k, "str", ("v%d-%d-" % (k, rid)).ljust(20, "x")[:20])
        out += b
        row_crc = crc8(row_crc, bytes([c]))
        b, c = cell("n%d" % k, "int", rid * 10 + k)
        out += b
        row_crc = crc8(row_crc, bytes([c]))
    row_crc = crc8(row_crc, bytes([0]))  # no delete marker
    out += bytes([0x09, row_crc])
    return struct.pack("<I", 0x75) + bytes(out)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def response(first_id, n, token):
    body = bytearray()
    for i in range(n):
        rec = varint((1 << 3) | 0) + varint(1) + field_bytes(2, row(first_id + i))
        body += field_bytes(1, rec)
    body += field_bytes(2, token.encode())
    body += varint((3 << 3) | 0) + varint(1)
    return bytes(body)


def main():
    out = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    os.makedirs(out, exist_ok=True)
    for f in range(files):
        path = os.path.join(out, "batch-%03d.bin" % f)
        with open(path, "wb") as fp:
            fp.write(response(f * n + 1, n, "token-%d" % (f + 1)))
        print(path)


if __name__ == "__main__":
    main()
