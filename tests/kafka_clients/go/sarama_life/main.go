// A topic's whole life through sarama (Go), the client library of Debian's
// golang-github-shopify-sarama-dev: admin calls, an idempotent producer with
// each codec, partition consumers, a consumer group with commits. Prints one
// JSON object that tests/tests/kafka_sarama.rs asserts.
//
// Usage: sarama_life BROKERS TOPIC REPLICATION_FACTOR (BROKERS comma-separated)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const perCodec = 20

var out = map[string]interface{}{}

func fail(step string, err error) {
	out["failed"] = fmt.Sprintf("%s: %v", step, err)
	emit()
	os.Exit(1)
}

func emit() {
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func errName(err error) interface{} {
	if err == nil {
		return nil
	}
	if k, ok := err.(sarama.KError); ok {
		return int(k)
	}
	if e, ok := err.(*sarama.TopicError); ok {
		return int(e.Err)
	}
	if e, ok := err.(*sarama.ProducerError); ok {
		return errName(e.Err)
	}
	if e, ok := err.(*sarama.TopicPartitionError); ok {
		return int(e.Err)
	}
	return err.Error()
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-life"
	c.Version = sarama.V2_1_0_0
	c.Admin.Timeout = 10 * time.Second
	c.Metadata.Retry.Max = 20
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	c.Consumer.Return.Errors = true
	return c
}

// What the members of one group have read, by value; done closes once
// every one of want values was read.
type reads struct {
	want int
	mu   sync.Mutex
	seen map[string]bool
	done chan struct{}
	once sync.Once
}

func newReads(want int) *reads {
	return &reads{want: want, seen: map[string]bool{}, done: make(chan struct{})}
}

// One member of a group: what it has read goes into reads; claims holds the
// partitions of its latest generation.
type handler struct {
	reads       *reads
	mu          sync.Mutex
	claims      []int32
	generations int
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.generations++
	h.claims = nil
	for _, ps := range s.Claims() {
		h.claims = append(h.claims, ps...)
	}
	sort.Slice(h.claims, func(i, j int) bool { return h.claims[i] < h.claims[j] })
	return nil
}
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		r := h.reads
		r.mu.Lock()
		r.seen[string(m.Value)] = true
		if len(r.seen) >= r.want {
			r.once.Do(func() { close(r.done) })
		}
		r.mu.Unlock()
	}
	return nil
}

// A member of group reading topic with h until ctx ends; the result goes to
// stopped.
func member(addrs []string, group, topic string, h *handler, ctx context.Context, stopped chan<- error) {
	cg, err := sarama.NewConsumerGroup(addrs, group, config())
	if err != nil {
		stopped <- err
		return
	}
	go func() {
		for e := range cg.Errors() {
			fmt.Fprintln(os.Stderr, "group error:", e)
		}
	}()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil {
			cg.Close()
			stopped <- err
			return
		}
	}
	stopped <- cg.Close()
}

// stallReport is how long a run may take before it writes where every
// goroutine is to stderr and exits, ahead of the test's 300 s deadline, so
// that a run that hangs says where.
const stallReport = 240 * time.Second

func main() {
	go func() {
		time.Sleep(stallReport)
		fmt.Fprintf(os.Stderr, "sarama_life still running after %v; goroutines:\n", stallReport)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		os.Exit(3)
	}()
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: sarama_life BROKERS TOPIC REPLICATION_FACTOR")
		os.Exit(2)
	}
	addrs := strings.Split(os.Args[1], ",")
	topic := os.Args[2]
	rf, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("replication factor", err)
	}
	group := topic + "-g"
	cfg := config()

	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		fail("admin", err)
	}
	defer admin.Close()
	retention := "3600000"
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: int16(rf),
		ConfigEntries: map[string]*string{"retention.ms": &retention}}
	out["create"] = errName(admin.CreateTopic(topic, detail, false))
	out["create_again"] = errName(admin.CreateTopic(topic, detail, false))
	bad := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
	out["create_invalid"] = errName(admin.CreateTopic("../"+topic, bad, false))

	topics, err := admin.ListTopics()
	if err != nil {
		fail("list topics", err)
	}
	if d, ok := topics[topic]; ok {
		out["listed"] = map[string]interface{}{"partitions": d.NumPartitions,
			"replication_factor": d.ReplicationFactor, "retention.ms": d.ConfigEntries["retention.ms"]}
	}
	md, err := admin.DescribeTopics([]string{topic, topic + "-missing"})
	if err != nil {
		fail("describe topics", err)
	}
	described := map[string]interface{}{}
	for _, t := range md {
		described[t.Name] = []interface{}{int(t.Err), len(t.Partitions)}
	}
	out["described"] = described
	brokers, controller, err := admin.DescribeCluster()
	if err != nil {
		fail("describe cluster", err)
	}
	out["cluster"] = []interface{}{len(brokers), controller}
	_, err = admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny,
		ResourcePatternTypeFilter: sarama.AclPatternAny, Operation: sarama.AclOperationAny,
		PermissionType: sarama.AclPermissionAny})
	out["list_acls"] = errName(err)

	// An idempotent producer, a batch of records per codec.
	pc := config()
	pc.Producer.Idempotent = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Producer.Retry.Max = 20
	pc.Producer.Retry.Backoff = 250 * time.Millisecond
	pc.Producer.Return.Successes = true
	pc.Net.MaxOpenRequests = 1
	sent := map[int32][]int64{}
	for _, codec := range []struct {
		name string
		c    sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy}, {"lz4", sarama.CompressionLZ4}} {
		c := *pc
		c.Producer.Compression = codec.c
		p, err := sarama.NewSyncProducer(addrs, &c)
		if err != nil {
			fail("producer "+codec.name, err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < perCodec; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
				Key:     sarama.StringEncoder(fmt.Sprintf("k%d", i)),
				Value:   sarama.StringEncoder(fmt.Sprintf("%s-%d", codec.name, i)),
				Headers: []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec.name)}}})
		}
		if err := p.SendMessages(msgs); err != nil {
			fail("send "+codec.name, err)
		}
		for _, m := range msgs {
			sent[m.Partition] = append(sent[m.Partition], m.Offset)
		}
		p.Close()
	}
	for _, offs := range sent {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	}
	out["sent"] = sent
	// zstd needs Produce v7, which this sarama does not send: refused.
	zc := *pc
	zc.Producer.Compression = sarama.CompressionZSTD
	zc.Producer.Retry.Max = 1
	if p, err := sarama.NewSyncProducer(addrs, &zc); err == nil {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("z")})
		out["zstd"] = errName(err)
		p.Close()
	} else {
		fail("producer zstd", err)
	}

	// Offsets and partition consumers.
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		fail("client", err)
	}
	defer client.Close()
	latest := map[int32]int64{}
	earliest := map[int32]int64{}
	byTime := map[int32]int64{}
	for p := int32(0); p < 3; p++ {
		if latest[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			fail("latest", err)
		}
		if earliest[p], err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
			fail("earliest", err)
		}
		if byTime[p], err = client.GetOffset(topic, p, 1); err != nil {
			fail("by time", err)
		}
	}
	out["latest"], out["earliest"], out["by_time_1"] = latest, earliest, byTime
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer", err)
	}
	var consumed [][]interface{}
	for p := int32(0); p < 3; p++ {
		if latest[p] == 0 {
			continue
		}
		pcons, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume partition", err)
		}
		for {
			select {
			case m := <-pcons.Messages():
				var hs [][]string
				for _, h := range m.Headers {
					hs = append(hs, []string{string(h.Key), string(h.Value)})
				}
				consumed = append(consumed, []interface{}{m.Partition, m.Offset, string(m.Key), string(m.Value), hs})
				if m.Offset+1 >= latest[p] {
					goto next
				}
			case e := <-pcons.Errors():
				fail("consume", e)
			case <-time.After(15 * time.Second):
				fail("consume", fmt.Errorf("partition %d: no record for 15 s", p))
			}
		}
	next:
		pcons.Close()
	}
	consumer.Close()
	out["consumed"] = consumed

	// A consumer group reads everything and commits.
	all := newReads(4 * perCodec)
	h := &handler{reads: all}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go member(addrs, group, topic, h, ctx, stopped)
	select {
	case <-all.done:
	case err := <-stopped:
		fail("group member", fmt.Errorf("stopped before reading every record: %v", err))
	case <-time.After(30 * time.Second):
		fail("group", fmt.Errorf("read %d of %d records in 30 s", len(all.seen), all.want))
	}
	// A few commit intervals, so the marks are committed while the member is in the group.
	time.Sleep(600 * time.Millisecond)
	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		fail("describe group", err)
	}
	out["describe_group_live"] = []interface{}{groups[0].State, groups[0].ProtocolType, len(groups[0].Members)}
	cancel()
	if err := <-stopped; err != nil {
		fail("group consume", err)
	}
	out["group_read"] = len(all.seen)
	listed, err := admin.ListConsumerGroups()
	if err != nil {
		fail("list groups", err)
	}
	out["groups"] = listed
	groups, err = admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		fail("describe group", err)
	}
	out["describe_group"] = groups[0].State
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		fail("group offsets", err)
	}
	committed := map[int32]int64{}
	for p, b := range offs.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			fail("group offsets", b.Err)
		}
		committed[p] = b.Offset
	}
	out["committed"] = committed

	// Two members of a second group share the partitions: the second to join
	// makes the first rejoin, and between them they read every record.
	both := newReads(4 * perCodec)
	h1, h2 := &handler{reads: both}, &handler{reads: both}
	ctx, cancel = context.WithCancel(context.Background())
	stopped1, stopped2 := make(chan error, 1), make(chan error, 1)
	go member(addrs, group+"2", topic, h1, ctx, stopped1)
	deadline := time.Now().Add(60 * time.Second)
	for {
		h1.mu.Lock()
		alone := len(h1.claims)
		h1.mu.Unlock()
		if alone == 3 {
			break
		}
		if time.Now().After(deadline) {
			fail("first member", fmt.Errorf("holds %d partitions after 60 s", alone))
		}
		select {
		case err := <-stopped1:
			fail("first member", fmt.Errorf("stopped: %v", err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	go member(addrs, group+"2", topic, h2, ctx, stopped2)
	for {
		h1.mu.Lock()
		h2.mu.Lock()
		c1, c2 := append([]int32{}, h1.claims...), append([]int32{}, h2.claims...)
		h2.mu.Unlock()
		h1.mu.Unlock()
		both.mu.Lock()
		n := len(both.seen)
		both.mu.Unlock()
		if len(c1) > 0 && len(c2) > 0 && len(c1)+len(c2) == 3 && n == both.want {
			out["two_members"] = []interface{}{c1, c2}
			break
		}
		if time.Now().After(deadline) {
			fail("two members", fmt.Errorf("claims %v and %v, %d of %d records read in 60 s", c1, c2, n, both.want))
		}
		select {
		case err := <-stopped1:
			fail("two members", fmt.Errorf("the first stopped: %v", err))
		case err := <-stopped2:
			fail("two members", fmt.Errorf("the second stopped: %v", err))
		case <-time.After(100 * time.Millisecond):
		}
	}
	groups, err = admin.DescribeConsumerGroups([]string{group + "2"})
	if err != nil {
		fail("describe group", err)
	}
	out["two_members_described"] = []interface{}{groups[0].State, len(groups[0].Members)}
	cancel()
	for _, s := range []chan error{stopped1, stopped2} {
		if err := <-s; err != nil {
			fail("two members", err)
		}
	}
	out["first_member_generations"] = h1.generations

	// Partitions added, records deleted, configs.
	out["create_partitions"] = errName(admin.CreatePartitions(topic, 4, nil, false))
	out["create_partitions_fewer"] = errName(admin.CreatePartitions(topic, 2, nil, false))
	md, err = admin.DescribeTopics([]string{topic})
	if err != nil {
		fail("describe topics", err)
	}
	out["partitions_after"] = len(md[0].Partitions)
	// This sarama's ClusterAdmin.DeleteRecords asks the controller and drops
	// the partitions' errors; a partition's leader is the one to ask (as
	// Kafka requires), so ask it directly and report its answer.
	if err := client.RefreshMetadata(topic); err != nil {
		fail("refresh", err)
	}
	leader, err := client.Leader(topic, 0)
	if err != nil {
		fail("leader", err)
	}
	deleted, err := leader.DeleteRecords(&sarama.DeleteRecordsRequest{Timeout: cfg.Admin.Timeout,
		Topics: map[string]*sarama.DeleteRecordsRequestTopic{topic: {PartitionOffsets: map[int32]int64{0: 1}}}})
	if err != nil {
		fail("delete records", err)
	}
	answer := deleted.Topics[topic].Partitions[0]
	out["delete_records"] = []interface{}{int(answer.Err), answer.LowWatermark}
	earliest0, err := client.GetOffset(topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail("earliest after delete", err)
	}
	out["earliest_0_after_delete"] = earliest0
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe config", err)
	}
	configs := func(entries []sarama.ConfigEntry) map[string]interface{} {
		m := map[string]interface{}{}
		for _, e := range entries {
			if e.Name == "retention.ms" || e.Name == "retention.bytes" || e.Name == "cleanup.policy" {
				m[e.Name] = []interface{}{e.Value, e.Default}
			}
		}
		return m
	}
	out["configs"] = configs(entries)
	bytes := "1048576"
	out["alter_config"] = errName(admin.AlterConfig(sarama.TopicResource, topic,
		map[string]*string{"retention.bytes": &bytes}, false))
	entries, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe config", err)
	}
	out["configs_after_alter"] = configs(entries)
	unknown := "1"
	out["alter_unknown_config"] = errName(admin.AlterConfig(sarama.TopicResource, topic,
		map[string]*string{"no.such.config": &unknown}, false))

	out["delete"] = errName(admin.DeleteTopic(topic))
	out["delete_again"] = errName(admin.DeleteTopic(topic))
	md, err = admin.DescribeTopics([]string{topic})
	if err != nil {
		fail("describe deleted topic", err)
	}
	out["described_after_delete"] = int(md[0].Err)
	out["client"] = "sarama"
	emit()
}
