// paths.mjs: where the harness finds what it runs: the source tree, the build directory
// (LUNNEL_BUILD_DIR, as ctest sets it; build/ otherwise), the lunnel and lunnel-emulator
// binaries (LUNNEL_BIN overrides lunnel), and the Node test dependencies (the official
// Tablestore SDK installed in tests/node/node_modules by tests/node/setup.sh).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const sourceDir = process.env.LUNNEL_SOURCE_DIR || path.resolve(here, '../..');
export const buildDir = process.env.LUNNEL_BUILD_DIR || path.join(sourceDir, 'build');

export function lunnelBinary() {
  return process.env.LUNNEL_BIN || path.join(buildDir, 'lunnel');
}

export function emulatorBinary() {
  return path.join(buildDir, 'lunnel-emulator');
}

// require() resolving from tests/node (the package whose lockfile pins the SDK).
const nodeRequire = createRequire(path.resolve(here, '../node/package.json'));

// The official SDK module (tablestore@5.6.5).
export function tablestore() {
  return nodeRequire('tablestore');
}
