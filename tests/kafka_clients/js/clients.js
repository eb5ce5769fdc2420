// KafkaJS scenarios against the Sluice Kafka listener, driven by
// tests/tests/kafka_js.rs. Each prints one JSON document on stdout and
// exits 0, or prints the error on stderr and exits 1.
//
//   node clients.js admin BOOTSTRAP TOPIC PARTITIONS
//   node clients.js produce BOOTSTRAP TOPIC CODEC(none|gzip) N IDEMPOTENT(0|1)
//   node clients.js group-consume BOOTSTRAP TOPIC GROUP N
//   node clients.js group-pair BOOTSTRAP TOPIC GROUP
'use strict';

const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const deadline = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());

function kafka(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 3 },
  });
}

async function admin(bootstrap, topic, partitions) {
  const a = kafka(bootstrap, 'sluice-js-admin').admin();
  await a.connect();
  const created = await a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  const meta = await a.fetchTopicMetadata({ topics: [topic] });
  const topics = await a.listTopics();
  await a.disconnect();
  return { created, partitions: meta.topics[0].partitions.length, listed: topics.includes(topic) };
}

async function produce(bootstrap, topic, codec, n, idempotent) {
  const p = kafka(bootstrap, 'sluice-js-producer').producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
  });
  await p.connect();
  const compression = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }[codec];
  const reports = [];
  // Two sends of n/2 records each: the second starts where the first ended.
  const half = Math.floor(n / 2);
  for (const [from, to] of [[0, half], [half, n]]) {
    const messages = [];
    for (let i = from; i < to; i++) {
      messages.push({ key: `k${i}`, value: `js-${codec}-${i}`, partition: 0, headers: { h: `v${i}` } });
    }
    const res = await p.send({ topic, acks: -1, compression, messages });
    reports.push({ partition: res[0].partition, errorCode: res[0].errorCode, baseOffset: Number(res[0].baseOffset), count: to - from });
  }
  await p.disconnect();
  return reports;
}

async function groupConsume(bootstrap, topic, group, n) {
  const c = kafka(bootstrap, 'sluice-js-consumer').consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  const records = [];
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  await c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      records.push({
        partition,
        offset: Number(message.offset),
        key: message.key && message.key.toString(),
        value: message.value && message.value.toString(),
      });
      await c.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
      if (records.length >= n) done();
    },
  });
  await Promise.race([finished, deadline(60000, `consuming ${n} records`)]);
  const a = kafka(bootstrap, 'sluice-js-admin').admin();
  await a.connect();
  const committed = await a.fetchOffsets({ groupId: group, topics: [topic] });
  await a.disconnect();
  await c.disconnect();
  return { records, committed: committed[0].partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })) };
}

async function groupPair(bootstrap, topic, group) {
  const a = kafka(bootstrap, 'sluice-js-admin').admin();
  await a.connect();
  const partitions = (await a.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length;
  await a.disconnect();
  const assignments = { a: [], b: [] };
  const members = [];
  for (const name of ['a', 'b']) {
    const c = kafka(bootstrap, `sluice-js-${name}`).consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
    c.on(c.events.GROUP_JOIN, (e) => {
      assignments[name] = (e.payload.memberAssignment[topic] || []).slice().sort((x, y) => x - y);
    });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachMessage: async () => {} });
    members.push(c);
  }
  // Wait until the two assignments split the partitions between them.
  const split = () => {
    const all = [...assignments.a, ...assignments.b].sort((x, y) => x - y);
    return assignments.a.length > 0 && assignments.b.length > 0 && JSON.stringify(all) === JSON.stringify([...Array(partitions).keys()]);
  };
  await Promise.race([
    new Promise((resolve) => {
      const t = setInterval(() => { if (split()) { clearInterval(t); resolve(); } }, 50);
    }),
    deadline(60000, `a split of ${topic}: ${JSON.stringify(assignments)}`),
  ]);
  const result = { a: assignments.a, b: assignments.b };
  for (const c of members) await c.disconnect();
  return result;
}

async function main(argv) {
  const [s, ...args] = argv;
  switch (s) {
    case 'admin': return admin(args[0], args[1], Number(args[2]));
    case 'produce': return produce(args[0], args[1], args[2], Number(args[3]), args[4] === '1');
    case 'group-consume': return groupConsume(args[0], args[1], args[2], Number(args[3]));
    case 'group-pair': return groupPair(args[0], args[1], args[2]);
    default: throw new Error(`unknown scenario ${s}`);
  }
}

main(process.argv.slice(2)).then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); process.exit(0); },
  (e) => { process.stderr.write(`${e && e.stack ? e.stack : e}\n`); process.exit(1); },
);
