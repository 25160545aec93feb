#!/usr/bin/env node
// cli.mjs: the harness for tests that are not written in Node (tests/e2e/*.sh, busted specs):
//
//   node tests/harness/cli.mjs emulator --dir DIR [--timeout-ms MS] [--lifetime-s S] [-- EMULATOR ARGS...]
//   node tests/harness/cli.mjs wait-port --port P [--pid PID] [--timeout-ms MS]
//
// starts lunnel-emulator on 127.0.0.1 with a free port exactly as the Node tests do (same
// start, same ready-line wait with a deadline), its output in DIR/emulator.out and
// DIR/emulator.err, in its own process group, and prints "PORT PID" once it accepts
// connections; the caller stops it (kill PID) and removes DIR. Exit 1 with the reason (and the
// emulator's stderr) when it does not come up; no emulator is left running then.
// --lifetime-s bounds its life (coreutils timeout, whose pid is printed; kill stops both).
// wait-port waits until 127.0.0.1:P accepts connections (a server without a ready line);
// exit 1 when PID exits first or at the deadline.
import { startEmulator } from './emulator.mjs';
import { waitForPort } from './ports.mjs';

const USAGE = 'usage: node tests/harness/cli.mjs emulator --dir DIR [--timeout-ms MS] [--lifetime-s S] [-- EMULATOR ARGS...]\n'
  + '       node tests/harness/cli.mjs wait-port --port P [--pid PID] [--timeout-ms MS]\n';

function usage(msg) {
  process.stderr.write(`cli.mjs: ${msg}\n${USAGE}`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const cmd = argv.shift();
if (cmd !== 'emulator' && cmd !== 'wait-port') usage(cmd ? `unknown command ${cmd}` : 'a command is required');
let dir = null, timeoutMs = 60000, args = [], port = null, pid = null, lifetimeS = 0;
while (argv.length) {
  const a = argv.shift();
  if (a === '--dir' && cmd === 'emulator') dir = argv.shift();
  else if (a === '--port' && cmd === 'wait-port') port = Number(argv.shift());
  else if (a === '--pid' && cmd === 'wait-port') pid = Number(argv.shift());
  else if (a === '--lifetime-s' && cmd === 'emulator') lifetimeS = Number(argv.shift());
  else if (a === '--timeout-ms') timeoutMs = Number(argv.shift());
  else if (a === '--' && cmd === 'emulator') args = argv.splice(0);
  else usage(`unknown option ${a}`);
}
if (!(timeoutMs > 0)) usage('--timeout-ms needs a positive number');

if (cmd === 'wait-port') {
  if (!(port > 0)) usage('--port is required');
  try {
    await waitForPort(port, { pid, timeoutMs });
    process.exit(0);
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
}

if (!dir) usage('--dir is required');
try {
  const emu = await startEmulator({ args, logTo: `${dir}/emulator`, readyTimeoutMs: timeoutMs, lifetimeS });
  emu.child.unref();
  process.stdout.write(`${emu.port} ${emu.pid}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
