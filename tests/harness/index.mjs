// index.mjs: the end-to-end test harness in one import (tests/README.md "The harness"):
//
//   import { startEmulator, startRun, tempDir, waitFor, createTable, putRow } from '../harness/index.mjs';
//
// paths.mjs   source/build dirs, binaries, the official SDK module
// proc.mjs    startProcess / runProcess: captured output, waits with deadlines, stop
// wait.mjs    waitFor / poll / withTimeout / sleep
// ports.mjs   freePort / waitForPort (servers without a ready line)
// scratch.mjs tempDir: scratch directories removed at exit
// seed.mjs    seed / random / randomInt / rng: seeded randomness, printed, replayable
// emulator.mjs startEmulator, signed post, admin calls
// lunnel.mjs  startRun / startLunnel / runLunnel, FAST, the collector's output
// writer.mjs  rows written with the official SDK, the expected-stream model, diff
// cli.mjs     the same for bash and busted: `node tests/harness/cli.mjs emulator --dir D`
export * from './paths.mjs';
export * from './proc.mjs';
export * from './wait.mjs';
export * from './ports.mjs';
export * from './scratch.mjs';
export * from './seed.mjs';
export * from './emulator.mjs';
export * from './lunnel.mjs';
export * from './writer.mjs';
