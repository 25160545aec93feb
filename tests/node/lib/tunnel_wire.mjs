// tunnel_wire.mjs: a minimal raw client of the Tunnel Service protocol for Node tests
// (PROTOCOL.md section 2): hand-written protobuf encoding/decoding of the few messages a
// reader needs (create, connect, heartbeat, getcheckpoint, checkpoint, readrecords) over the
// emulator helper's signed POST, so a test controls every request (and sees every
// acknowledgement) itself instead of going through lunnel.
//
//   const tc = tunnelClient(emu);            // emu from startEmulator()
//   const { status, msg } = await tc.call('connect', { 1: tunnelId, 2: { 1: 30 } });

// ---- protobuf encoding: a message is { fieldNumber: value | [values] } ----
function varint(n) {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out = [];
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return Buffer.from(out);
}

export function encode(msg) {
  const parts = [];
  for (const [k, vals] of Object.entries(msg)) {
    for (const v of Array.isArray(vals) ? vals : [vals]) {
      if (v === undefined || v === null) continue;
      const f = Number(k);
      if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') {
        parts.push(varint(f << 3), varint(typeof v === 'boolean' ? (v ? 1 : 0) : v));
      } else {
        const b = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v) : encode(v);
        parts.push(varint((f << 3) | 2), varint(b.length), b);
      }
    }
  }
  return Buffer.concat(parts);
}

// Decodes one level: { fieldNumber: [values] } with varints as BigInt, bytes as Buffer.
export function decode(buf) {
  const out = {};
  let i = 0;
  const rd = () => {
    let v = 0n, s = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << s;
      if (!(b & 0x80)) return v;
      s += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(rd());
    const f = key >> 3, wt = key & 7;
    let v;
    if (wt === 0) v = rd();
    else if (wt === 2) { const n = Number(rd()); v = buf.subarray(i, i + n); i += n; }
    else if (wt === 1) { v = buf.subarray(i, i + 8); i += 8; }
    else if (wt === 5) { v = buf.subarray(i, i + 4); i += 4; }
    else throw new Error(`wire type ${wt}`);
    (out[f] ||= []).push(v);
  }
  return out;
}

export const str = (m, f) => (m[f] ? m[f][0].toString('utf8') : undefined);
export const num = (m, f) => (m[f] ? Number(m[f][0]) : undefined);

// The integer first primary-key column of a PlainBuffer row (PROTOCOL.md section 4):
// header(4) ROW_PK CELL CELL_NAME u32 name CELL_VALUE u32 vtype(0) i64.
export function firstIntPk(row) {
  if (row[4] !== 0x01 || row[5] !== 0x03 || row[6] !== 0x04) throw new Error('not a pk row');
  const nl = row.readUInt32LE(7);
  const off = 11 + nl;
  if (row[off] !== 0x05 || row[off + 5] !== 0x00) throw new Error('first pk is not an INTEGER');
  return Number(row.readBigInt64LE(off + 6));
}

export function tunnelClient(emu) {
  return {
    // POST /tunnel/<name>; resolves { status, msg (decoded body), code (error code) }.
    async call(name, msg) {
      const r = await emu.post(`/tunnel/${name}`, encode(msg), { apiVersion: '2018-04-01' });
      const m = r.body.length ? decode(r.body) : {};
      return { status: r.status, msg: m, code: r.status === 200 ? undefined : str(m, 1) };
    },
  };
}
