// sdk_errors.mjs: asserting the service's refusals as the official Node.js SDK reports them.
import assert from 'node:assert/strict';

// Awaits `promise`, which must reject with HTTP `status` and the Tablestore error `code` in
// its message (and `message`, a RegExp, when given); returns the error.
export async function expectError(promise, status, code, message) {
  let err;
  try { await promise; } catch (e) { err = e; }
  assert.ok(err, `expected HTTP ${status} ${code}, but the call succeeded`);
  assert.equal(err.code, status, `HTTP status: ${err.message}`);
  assert.match(String(err.message), new RegExp(code), `error code in ${err.message}`);
  if (message) assert.match(String(err.message), message);
  return err;
}
