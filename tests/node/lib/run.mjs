// run.mjs: moved to the harness (tests/harness/: lunnel.mjs, writer.mjs, wait.mjs,
// scratch.mjs); this path re-exports it so tests written against it keep working. New tests
// import from '../harness/index.mjs'.
export { sourceDir, lunnelBinary } from '../../harness/paths.mjs';
export { tempDir } from '../../harness/scratch.mjs';
export { waitFor, withTimeout } from '../../harness/wait.mjs';
export * from '../../harness/lunnel.mjs';
export * from '../../harness/writer.mjs';
