// seed.mjs: seeded randomness for tests. One seed per test process: LUNNEL_TEST_SEED when set
// (to replay a failure), otherwise drawn from the clock. It is printed when first used and
// again on a failing exit, with the command line that replays it. rng(seed) gives independent
// deterministic streams (mulberry32) for workloads that must not depend on the order of draws.

export const seed = process.env.LUNNEL_TEST_SEED ? Number(process.env.LUNNEL_TEST_SEED) : (Date.now() % 1000000) + 1;
if (!Number.isSafeInteger(seed)) throw new Error(`LUNNEL_TEST_SEED=${process.env.LUNNEL_TEST_SEED}: not an integer`);

const replay = () => `seed ${seed} (LUNNEL_TEST_SEED=${seed} replays it)`;
let announced = false;
// Prints the seed once (as a TAP comment), and again on stderr if the process fails.
export function announceSeed() {
  if (announced) return seed;
  announced = true;
  console.log(`# ${replay()}`);
  process.on('exit', (code) => {
    if (code !== 0 || (process.exitCode ?? 0) !== 0) console.error(`# failed with ${replay()}`);
  });
  return seed;
}

// A deterministic generator of floats in [0, 1) from a 32-bit seed (mulberry32).
export function rng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let shared = null;
// The process's seeded stream: use it instead of Math.random.
export function random() {
  if (!shared) { announceSeed(); shared = rng(seed); }
  return shared();
}

// An integer in [0, n).
export function randomInt(n) {
  return Math.floor(random() * n);
}
