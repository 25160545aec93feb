// emulator.mjs: moved to the harness (tests/harness/emulator.mjs); this path re-exports it so
// tests written against it keep working. New tests import from '../harness/index.mjs'.
export * from '../../harness/emulator.mjs';
