// demo_writer.mjs: the row writer of `make demo` (scripts/demo). Writes to lunnel-emulator with
// the official Tablestore Node.js SDK when tests/node/setup.sh has installed it, else through
// the emulator's signed admin `load` action (generated rows), so the demo works offline too.
//   node scripts/demo_writer.mjs PORT base     create table `orders` and 5 rows
//   node scripts/demo_writer.mjs PORT more     3 new rows, 1 update, 1 delete (or 5 new rows)
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { post } from '../tests/harness/emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [port, phase] = process.argv.slice(2);
const creds = { accessKeyId: 'lunnel-ak', accessKeySecret: 'lunnel-secret', instance: 'lunnel' };
const table = 'orders';

let TS = null;
try {
  TS = createRequire(path.resolve(here, '../tests/node/package.json'))('tablestore');
} catch { /* SDK not installed: admin load */ }
if (process.env.DEMO_NO_SDK) TS = null; // exercise the offline path

async function admin(action, body) {
  const r = await post(Number(port), `/_emulator/${action}`, JSON.stringify(body), creds);
  if (r.status !== 200) throw new Error(`admin ${action}: HTTP ${r.status} ${r.body}`);
  return JSON.parse(r.body.toString());
}

if (!TS) {
  const start = phase === 'base' ? 1 : 100;
  await admin('load', { table, rows: 5, columns: 1, value_bytes: 12, start, create: phase === 'base' });
  console.log(`demo: wrote 5 generated rows (ids ${start}..${start + 4}) through the emulator's load action`);
  process.exit(0);
}

const c = new TS.Client({ accessKeyId: creds.accessKeyId, secretAccessKey: creds.accessKeySecret,
  endpoint: `http://127.0.0.1:${port}`, instancename: creds.instance, maxRetries: 0 });
const cond = () => new TS.Condition(TS.RowExistenceExpectation.IGNORE, null);
const pk = (id) => [{ id: TS.Long.fromNumber(id) }];
const put = (id, item, qty, price) => c.putRow({ tableName: table, condition: cond(), primaryKey: pk(id),
  attributeColumns: [{ item }, { qty: TS.Long.fromNumber(qty) }, { price }] });

if (phase === 'base') {
  await c.createTable({
    tableMeta: { tableName: table, primaryKey: [{ name: 'id', type: 'INTEGER' }] },
    reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
    tableOptions: { timeToLive: -1, maxVersions: 1 },
    streamSpecification: { enableStream: true, expirationTime: 24 },
  });
  const items = ['apples', 'pears', 'plums', 'figs', 'limes'];
  for (let i = 0; i < 5; i++) await put(i + 1, items[i], (i + 1) * 3, 1.5 + i);
  console.log('demo: table orders created, 5 rows written with the Tablestore Node.js SDK');
} else {
  await put(100, 'cherries', 12, 4.25);
  await put(101, 'grapes', 2, 3.1);
  await put(102, 'melon', 1, 2.75);
  await c.updateRow({ tableName: table, condition: cond(), primaryKey: pk(1),
    updateOfAttributeColumns: [{ PUT: [{ qty: TS.Long.fromNumber(99) }] }, { DELETE_ALL: ['price'] }] });
  await c.deleteRow({ tableName: table, condition: cond(), primaryKey: pk(2) });
  console.log('demo: 3 puts, 1 update (qty=99, price deleted), 1 delete written while lunnel runs');
}
