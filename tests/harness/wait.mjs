// wait.mjs: every wait of the harness has a deadline and names what it waited for. Tests wait
// on conditions (a log line, a counter, a file's content), never on time alone; sleep() is
// only for pacing a workload (e.g. a seeded pause before a kill), not for waiting.

// Polls `fn` (sync or async) every `intervalMs` until it returns a truthy value, which it
// returns; after timeoutMs throws an error naming `what` and the last value. With
// { retryErrors: true } a throw of `fn` counts as "not yet" (its message is the last value).
export async function waitFor(fn, timeoutMs, what, { intervalMs = 25, retryErrors = false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (!retryErrors) throw e;
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

// waitFor that treats a throw as "not yet" (a server still starting refuses connections).
export function poll(fn, timeoutMs, what) {
  return waitFor(fn, timeoutMs, what, { intervalMs: 50, retryErrors: true });
}

// Resolves like `promise`, or to an Error after timeoutMs (the timer never outlives it).
export async function withTimeout(promise, timeoutMs, what) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs); });
  try { return await Promise.race([promise, t]); } finally { clearTimeout(timer); }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
