// @platformatic/kafka scenarios against the Sluice Kafka listener, driven
// by tests/tests/kafka_js.rs. This client fetches by topic id (Fetch v13+),
// so it reads nothing from a broker whose topic ids are all zero. Prints
// one JSON document on stdout and exits 0, or prints the error on stderr
// and exits 1.
//
//   node platformatic.mjs round-trip BOOTSTRAP TOPIC GROUP N
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'

const deadline = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())

// Creates TOPIC with 2 partitions, produces N records spread over them,
// reads them all back in group GROUP from the earliest offset and commits.
async function roundTrip (bootstrap, topic, group, n) {
  const bootstrapBrokers = [bootstrap]
  const admin = new Admin({ clientId: 'sluice-plat-admin', bootstrapBrokers })
  await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
  const meta = await admin.metadata({ topics: [topic] })
  const topicId = meta.topics.get(topic).id
  await admin.close()

  const producer = new Producer({ clientId: 'sluice-plat-producer', bootstrapBrokers, serializers: stringSerializers, acks: -1 })
  const messages = []
  for (let i = 0; i < n; i++) {
    messages.push({ topic, partition: i % 2, key: `k${i}`, value: `plat-${i}`, headers: new Map([['h', `v${i}`]]) })
  }
  const sent = await producer.send({ messages })
  await producer.close()

  const consumer = new Consumer({
    clientId: 'sluice-plat-consumer',
    groupId: group,
    bootstrapBrokers,
    deserializers: stringDeserializers,
    autocommit: false,
    maxWaitTime: 200,
    sessionTimeout: 10000,
    heartbeatInterval: 1000
  })
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
  const records = []
  const next = new Map()
  await Promise.race([
    (async () => {
      for await (const m of stream) {
        records.push({ partition: m.partition, offset: Number(m.offset), key: m.key, value: m.value, h: m.headers.get('h') })
        next.set(m.partition, Number(m.offset) + 1)
        if (records.length === n) break
      }
    })(),
    deadline(60000, `${n} records of ${topic}`)
  ])
  const offsets = [...next].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset), leaderEpoch: 0 }))
  await consumer.commit({ offsets })
  await stream.close()
  await consumer.close()
  records.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
  return {
    topicId,
    produced: (sent.offsets ?? []).map(o => ({ partition: o.partition, offset: Number(o.offset) })),
    records,
    committed: [...next].sort((a, b) => a[0] - b[0]).map(([partition, offset]) => ({ partition, offset }))
  }
}

async function main ([s, ...args]) {
  switch (s) {
    case 'round-trip': return roundTrip(args[0], args[1], args[2], Number(args[3]))
    default: throw new Error(`unknown scenario ${s}`)
  }
}

main(process.argv.slice(2)).then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); process.exit(0) },
  (e) => { process.stderr.write(`${e && e.stack ? e.stack : e}\n`); process.exit(1) }
)
