// scratch.mjs: scratch directories under $TMPDIR, removed when the test process exits
// (LUNNEL_KEEP_TMP=1 keeps them and prints where they are). Tests never write into the
// source tree: outputs, data dirs, generated scripts all go here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made = [];
process.on('exit', () => {
  if (process.env.LUNNEL_KEEP_TMP) {
    if (made.length) console.error(`# kept scratch directories: ${made.join(' ')}`);
    return;
  }
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'lunnel-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
