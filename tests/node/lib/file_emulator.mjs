// file_emulator.mjs: one emulator shared by the tests of a file. `emulatorForFile(opts)`
// registers node:test hooks: before the file's tests it starts the emulator
// (`startEmulator(opts)`) and opens a Tablestore client on it; after them it runs `cleanup`
// (e.g. `killAll` of the runs the tests started, so none outlives its server) and stops it.
// The returned object's `emu` and `c` are set once the before hook has run.
import { after, before } from 'node:test';
import { startEmulator } from '../../harness/index.mjs';

export function emulatorForFile(opts = {}, { cleanup = null } = {}) {
  const suite = { emu: null, c: null };
  before(async () => {
    suite.emu = await startEmulator(opts);
    suite.c = suite.emu.client();
  });
  after(async () => {
    if (cleanup) await cleanup();
    await suite.emu?.stop();
  });
  return suite;
}
