// run_reload_graph.test.mjs: hot reload of a script with two helper modules, end to end:
// `lunnel run` (watching, 2 workers) consumes a stream while rows are written continuously and
// the helpers and the script are edited good -> broken -> good, one helper is deleted and
// restored, and the new script version migrates ctx.state in its reload hook. Checked from the
// script's own output (one line per record: id, the version tags it ran with, the version
// number): every row exactly once, each by a valid version whose tags match its number, no
// broken tag ever, versions never go back on a channel, and the log names what happened.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { I, createTable, putRow, startLunnel, tempDir, waitFor } from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { killAll, track } from './lib/ids.mjs';

const suite = emulatorForFile({ args: ['--partitions', '2'] }, { cleanup: killAll });

const main = (m, withReload) => `
local a = require('helpa')
local b = require('sub.helpb')
local M = {}
function M.open(ctx)
  ctx.state.${withReload ? 'total' : 'n'} = 0
  ctx.state.f = assert(io.open(ctx.custom.dir .. '/' .. ctx.channel_id .. '.out', 'a'))
  ctx.state.f:setvbuf('no')
end
${withReload ? `function M.reload(ctx, old)
  if ctx.state.n then ctx.state.total, ctx.state.n = ctx.state.n, nil end
  ctx.log.info('migrated', { old = old, m = '${m}' })
end` : ''}
function M.process(ctx, batch)
  local out = {}
  for _, r in batch:iter() do
    ctx.state.${withReload ? 'total' : 'n'} = ctx.state.${withReload ? 'total' : 'n'} + 1
    out[#out + 1] = r.pk.id .. ' ${m} ' .. a.tag .. ' ' .. b.tag .. ' ' .. ctx.script_version
  end
  if #out > 0 then ctx.state.f:write(table.concat(out, '\\n') .. '\\n') end
end
return M
`;

// Not startRun: the script is watched (hot reload) and the custom value is only the dir.
function spawnRun(dir, script, table) {
  return startLunnel(['run', '--endpoint', suite.emu.endpoint, '--instance', suite.emu.instance, '--table', table, '--tunnel', 't',
    '--create', 'Stream', '--custom', JSON.stringify({ dir }), '--heartbeat-interval', '0.1', '--heartbeat-timeout', '3',
    '--checkpoint-interval', '0.2', '--max-backoff', '0.1', '--workers', '2', script], { emu: suite.emu });
}

function readOut(dir) {
  const rows = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.out'))) {
    for (const l of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!l) continue;
      const [id, m, a, b, v] = l.split(' ');
      rows.push({ ch: f, id: Number(id), m, a, b, v: Number(v) });
    }
  }
  return rows;
}

test('hot reload of a module graph under continuous writes: every row once, by the version in effect', { timeout: 120000 }, async () => {
  const table = 'graph', dir = tempDir(), sdir = tempDir('lunnel-graph-');
  fs.mkdirSync(path.join(sdir, 'sub'));
  const write = (name, text) => { // by rename, as editors do
    fs.writeFileSync(path.join(sdir, name + '.tmp'), text);
    fs.renameSync(path.join(sdir, name + '.tmp'), path.join(sdir, name));
  };
  write('helpa.lua', "return {tag = 'a1'}\n");
  write('sub/helpb.lua', "return {tag = 'b1'}\n");
  write('main.lua', main('m1', false));
  await createTable(suite.c, table);
  const run = track(spawnRun(dir, path.join(sdir, 'main.lua'), table));
  await waitFor(() => /to=running/.test(run.stderr()), 20000, 'a running channel');

  let next = 0, writing = true;
  const writer = (async () => {
    while (writing) { await putRow(suite.c, table, next, 'g', { v: I(next) }); next++; }
  })();
  const reloads = () => (run.stderr().match(/script reloaded/g) || []).length;
  const rejects = () => (run.stderr().match(/script reload rejected/g) || []).length;
  let ok = 0, bad = 0;
  const step = async (name, text, good) => {
    const seen = readOut(dir).length;
    write(name, text);
    if (good) ok++; else bad++;
    try {
      await waitFor(() => reloads() >= ok && rejects() >= bad, 20000, `${name}: reloads ${ok}, rejects ${bad}`);
    } catch (e) {
      writing = false;
      await writer;
      throw new Error(`${e.message}\n${run.stderr().split('\n').filter((l) => /host|script/.test(l)).slice(-12).join('\n')}`);
    }
    await waitFor(() => readOut(dir).length >= seen + 20, 20000, `rows after editing ${name}`);
  };
  await waitFor(() => readOut(dir).length >= 20, 20000, 'first rows');
  await step('helpa.lua', "return {tag = 'a2'}\n", true);                       // v2
  await step('helpa.lua', "return {tag = 'abroken'\n", false);
  await step('helpa.lua', "return {tag = 'a3'}\n", true);                       // v3
  await step('sub/helpb.lua', "return {tag = 'b2'}\n", true);                   // v4
  await step('sub/helpb.lua', "error('b will not load')\n", false);
  await step('sub/helpb.lua', "return {tag = 'b3'}\n", true);                   // v5
  await step('main.lua', main('m2', true), true);                               // v6
  await step('main.lua', 'local M = {\n', false);
  // a deleted helper: logged, the running version goes on
  const seen = readOut(dir).length;
  fs.unlinkSync(path.join(sdir, 'helpa.lua'));
  await waitFor(() => /script file deleted, old version kept/.test(run.stderr()), 20000, 'deletion logged');
  await waitFor(() => readOut(dir).length >= seen + 20, 20000, 'rows after the deletion');
  write('helpa.lua', "return {tag = 'a3'}\n");
  await waitFor(() => /deleted script files are back/.test(run.stderr()), 20000, 'restore logged');
  writing = false;
  await writer;
  await waitFor(() => readOut(dir).length >= next, 30000, `all ${next} rows`);
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));

  const expect = { 1: 'm1 a1 b1', 2: 'm1 a2 b1', 3: 'm1 a3 b1', 4: 'm1 a3 b2', 5: 'm1 a3 b3', 6: 'm2 a3 b3' };
  const rows = readOut(dir);
  const ids = rows.map((r) => r.id).sort((x, y) => x - y);
  assert.deepEqual(ids, Array.from({ length: next }, (_, i) => i), 'every row exactly once');
  const last = {};
  for (const r of rows) {
    assert.equal(`${r.m} ${r.a} ${r.b}`, expect[r.v], `row ${r.id} ran by version ${r.v} with ${r.m} ${r.a} ${r.b}`);
    assert.ok(r.v >= (last[r.ch] ?? 0), `${r.ch}: version went back at row ${r.id}`);
    last[r.ch] = r.v;
  }
  assert.ok(Object.values(last).some((v) => v === 6), 'the last version ran');
  assert.match(run.stderr(), /script files changed, new version validated.*helpa\.lua/);
  assert.match(run.stderr(), /script files changed, new version validated.*helpb\.lua/);
  assert.match(run.stderr(), /migrated/);
  assert.doesNotMatch(run.stderr(), /broken/);
  console.log(`# ${next} rows over 6 versions, ${bad} broken versions refused`);
});
