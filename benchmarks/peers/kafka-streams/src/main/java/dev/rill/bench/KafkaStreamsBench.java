// The Kafka Streams peer of rill's benchmarks: one program that runs one
// workload (W1 stateless, W2 keyed count, W3 tumbling-window sum, W4 = W2 run
// with --guarantee exactly_once_v2, the restore of W2's store for W5, W6
// stream-table join, W7 stream-stream join) on the topics the generator loaded, stops by itself once it has processed the
// expected number of records (or restored every changelog partition), and
// prints one JSON line of timings on stdout. With --query-keys K, a thread
// reads random keys "u<0..K-1>" of the store "counts" from the moment the
// instance runs, one at a time, as interactive queries, and times the reads
// after --query-skip-ms (query_reads, query_p50_ms, query_p99_ms). With
// --group-progress DIR, --expect counts the records of every instance sharing
// DIR (the scale-out runs), as bench_rill does. The workloads are specified in
// benchmarks/README.md; benchmarks/rill and benchmarks/raw implement the same
// logic so that the outputs can be compared record for record.
package dev.rill.bench;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerInterceptor;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

public final class KafkaStreamsBench {
  static final long WINDOW_MS = 60_000L;
  static final long JOIN_WINDOW_MS = 60_000L;

  // ---- the input and output records --------------------------------------

  // An input value: {"user":"u123","amount":12.5,"category":"c7","ts":...,"seq":...,"pad":"..."}.
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static final class Purchase {
    public String user;
    public double amount;
    public String category;
    public long ts;
  }

  // W1's output value: {"user":"u123","amount":12.5}.
  @JsonPropertyOrder({"user", "amount"})
  public static final class Projection {
    public String user;
    public double amount;

    Projection(String user, double amount) {
      this.user = user;
      this.amount = amount;
    }
  }

  // W6's table row: {"name":"customer-123","tier":"gold"}.
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static final class Customer {
    public String name;
    public String tier;
  }

  // W6's output value: {"user":"u123","amount":12.5,"tier":"gold"}.
  @JsonPropertyOrder({"user", "amount", "tier"})
  public static final class Enriched {
    public String user;
    public double amount;
    public String tier;

    Enriched(String user, double amount, String tier) {
      this.user = user;
      this.amount = amount;
      this.tier = tier;
    }
  }

  // W7's second input: {"order":"o123","method":"card","ts":...}.
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static final class Payment {
    public String order;
    public String method;
    public long ts;
  }

  // W7's output value: {"user":"u123","amount":12.5,"method":"card","delay_ms":1234}.
  @JsonPropertyOrder({"user", "amount", "method", "delay_ms"})
  public static final class PaidOrder {
    public String user;
    public double amount;
    public String method;

    @JsonProperty("delay_ms")
    public long delayMs;

    PaidOrder(String user, double amount, String method, long delayMs) {
      this.user = user;
      this.amount = amount;
      this.method = method;
      this.delayMs = delayMs;
    }
  }

  static final ObjectMapper MAPPER = new ObjectMapper();

  static <T> Serde<T> jsonSerde(Class<T> type) {
    ObjectReader reader = MAPPER.readerFor(type);
    ObjectWriter writer = MAPPER.writerFor(type);
    Serializer<T> serializer =
        (topic, value) -> {
          try {
            return value == null ? null : writer.writeValueAsBytes(value);
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
        };
    Deserializer<T> deserializer =
        (topic, bytes) -> {
          try {
            return bytes == null ? null : reader.readValue(bytes);
          } catch (IOException e) {
            throw new IllegalArgumentException(e);
          }
        };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  // Event time is the value's "ts", as W3 specifies.
  static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(
        org.apache.kafka.clients.consumer.ConsumerRecord<Object, Object> record,
        long partitionTime) {
      Object value = record.value();
      return value instanceof Purchase ? ((Purchase) value).ts : record.timestamp();
    }
  }

  // ---- the workloads -----------------------------------------------------

  static Topology topology(String workload, Options o) {
    StreamsBuilder builder = new StreamsBuilder();
    Serde<Purchase> purchases = jsonSerde(Purchase.class);
    switch (workload) {
      case "w1" -> // Parse, keep amount >= 50, project user and amount.
          builder.stream(o.input, Consumed.with(Serdes.String(), purchases))
              .filter((user, p) -> p.amount >= 50.0)
              .mapValues(p -> new Projection(p.user, p.amount))
              .to(o.output, Produced.with(Serdes.String(), jsonSerde(Projection.class)));
      case "w2", "w4", "w5-restore" -> // Records per key, in a RocksDB store with a changelog.
          builder.stream(o.input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
              .groupByKey()
              .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts"))
              .toStream()
              .to(o.output, Produced.with(Serdes.String(), Serdes.Long()));
      case "w3" -> // Sum of amount per key per tumbling minute of event time.
          builder.stream(
                  o.input,
                  Consumed.with(Serdes.String(), purchases).withTimestampExtractor(new EventTime()))
              .groupByKey()
              .windowedBy(
                  TimeWindows.ofSizeAndGrace(
                      Duration.ofMillis(WINDOW_MS), Duration.ofMillis(o.graceMs)))
              .aggregate(
                  () -> 0.0,
                  (user, p, sum) -> sum + p.amount,
                  Materialized.<String, Double, WindowStore<Bytes, byte[]>>as("sums")
                      .withKeySerde(Serdes.String())
                      .withValueSerde(Serdes.Double()))
              .toStream()
              .to(
                  o.output,
                  Produced.with(
                      WindowedSerdes.timeWindowedSerdeFrom(String.class, WINDOW_MS),
                      Serdes.Double()));
      case "w6" -> { // Each purchase enriched with its user's tier from a table of customers.
        Serde<Customer> customerSerde = jsonSerde(Customer.class);
        KTable<String, Customer> customers =
            builder.table(
                o.secondInput,
                Consumed.with(Serdes.String(), customerSerde),
                Materialized.<String, Customer, KeyValueStore<Bytes, byte[]>>as("customers")
                    .withKeySerde(Serdes.String())
                    .withValueSerde(customerSerde));
        builder.stream(o.input, Consumed.with(Serdes.String(), purchases))
            .join(
                customers,
                (p, c) -> new Enriched(p.user, p.amount, c.tier),
                Joined.with(Serdes.String(), purchases, customerSerde).withName("w6-join"))
            .to(o.output, Produced.with(Serdes.String(), jsonSerde(Enriched.class)));
      }
      case "w7" -> { // Orders and payments of the same order id within a minute, inner join.
        Serde<Payment> paymentSerde = jsonSerde(Payment.class);
        KStream<String, Payment> payments =
            builder.stream(o.secondInput, Consumed.with(Serdes.String(), paymentSerde));
        builder.stream(o.input, Consumed.with(Serdes.String(), purchases))
            .join(
                payments,
                (order, payment) ->
                    new PaidOrder(order.user, order.amount, payment.method, payment.ts - order.ts),
                JoinWindows.ofTimeDifferenceWithNoGrace(Duration.ofMillis(JOIN_WINDOW_MS)),
                StreamJoined.with(Serdes.String(), purchases, paymentSerde)
                    .withName("w7-join")
                    .withStoreName("w7-join"))
            .to(o.output, Produced.with(Serdes.String(), jsonSerde(PaidOrder.class)));
      }
      default -> throw new IllegalArgumentException("unknown workload '" + workload + "'");
    }
    return builder.build();
  }

  // ---- measuring ---------------------------------------------------------

  static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  static final AtomicLong firstRecordMs = new AtomicLong();
  static final AtomicLong firstRecordCpuNanos = new AtomicLong();

  // Sees every batch the main consumer returns (never per record), so the
  // time the first input arrived costs the stream threads nothing.
  public static final class FirstRecordInterceptor implements ConsumerInterceptor<byte[], byte[]> {
    @Override
    public ConsumerRecords<byte[], byte[]> onConsume(ConsumerRecords<byte[], byte[]> records) {
      if (!records.isEmpty() && firstRecordMs.get() == 0) {
        long cpu = cpuNanos();
        if (firstRecordMs.compareAndSet(0, System.currentTimeMillis())) {
          firstRecordCpuNanos.set(cpu);
        }
      }
      return records;
    }

    @Override
    public void onCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {}

    @Override
    public void close() {}

    @Override
    public void configure(Map<String, ?> configs) {}
  }

  // Records processed by every stream thread, from Kafka Streams' own
  // thread-level metric (recorded at the INFO level, the default).
  static long processed(KafkaStreams streams) {
    double total = 0;
    for (Map.Entry<MetricName, ? extends Metric> e : streams.metrics().entrySet()) {
      MetricName name = e.getKey();
      if (name.name().equals("process-total") && name.group().equals("stream-thread-metrics")) {
        Object value = e.getValue().metricValue();
        if (value instanceof Number) total += ((Number) value).doubleValue();
      }
    }
    return (long) total;
  }

  static final class Restores implements StateRestoreListener {
    final Set<TopicPartition> ended = ConcurrentHashMap.newKeySet();
    final AtomicLong restored = new AtomicLong();
    final AtomicLong firstStartMs = new AtomicLong();
    final AtomicLong lastEndMs = new AtomicLong();

    @Override
    public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
      firstStartMs.compareAndSet(0, System.currentTimeMillis());
    }

    @Override
    public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long count) {
      restored.addAndGet(count);
    }

    @Override
    public void onRestoreEnd(TopicPartition tp, String store, long total) {
      lastEndMs.set(System.currentTimeMillis());
      ended.add(tp);
    }
  }

  // ---- the program -------------------------------------------------------

  static final class Options {
    String workload = "w1";
    String bootstrap = "127.0.0.1:9092";
    String applicationId;
    String input;
    String secondInput; // W6's customers, W7's payments
    String output;
    int threads = 1;
    String guarantee = "at_least_once";
    String stateDir = "/tmp/rill-bench-kafka-streams";
    long expect = 0;
    long timeoutS = 600;
    String readyFile;
    int partitions = 1;
    long graceMs = 10_000;
    String lingerMs;
    String sessionTimeoutMs;
    long queryKeys = 0;
    long querySkipMs = 0;
    String groupProgress;
  }

  static Options parse(String[] args) {
    Options o = new Options();
    for (int i = 0; i + 1 < args.length; i += 2) {
      String v = args[i + 1];
      switch (args[i]) {
        case "--workload" -> o.workload = v;
        case "--bootstrap" -> o.bootstrap = v;
        case "--application-id" -> o.applicationId = v;
        case "--input" -> o.input = v;
        case "--second-input" -> o.secondInput = v;
        case "--output" -> o.output = v;
        case "--threads" -> o.threads = Integer.parseInt(v);
        case "--guarantee" -> o.guarantee = v;
        case "--state-dir" -> o.stateDir = v;
        case "--expect" -> o.expect = Long.parseLong(v);
        case "--timeout-s" -> o.timeoutS = Long.parseLong(v);
        case "--ready-file" -> o.readyFile = v;
        case "--partitions" -> o.partitions = Integer.parseInt(v);
        case "--grace-ms" -> o.graceMs = Long.parseLong(v);
        case "--linger-ms" -> o.lingerMs = v;
        case "--session-timeout-ms" -> o.sessionTimeoutMs = v;
        case "--query-keys" -> o.queryKeys = Long.parseLong(v);
        case "--query-skip-ms" -> o.querySkipMs = Long.parseLong(v);
        case "--group-progress" -> o.groupProgress = v;
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (args.length % 2 != 0) throw new IllegalArgumentException("option without a value");
    if (o.applicationId == null || o.input == null || o.output == null)
      throw new IllegalArgumentException(
          "usage: --workload w1|w2|w3|w4|w5-restore|w6|w7 --bootstrap HOST:PORT"
              + " --application-id ID --input TOPIC [--second-input TOPIC] --output TOPIC"
              + " [--threads N] [--guarantee G] [--state-dir DIR]"
              + " [--expect RECORDS] [--timeout-s S] [--ready-file PATH] [--partitions N]"
              + " [--grace-ms MS] [--linger-ms MS] [--session-timeout-ms MS]"
              + " [--query-keys K [--query-skip-ms MS]] [--group-progress DIR]");
    return o;
  }

  public static void main(String[] args) throws Exception {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("kafka-streams bench: " + e.getMessage());
      System.exit(2);
      return;
    }

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, o.applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, o.threads);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, o.guarantee);
    props.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir);
    props.put(
        StreamsConfig.mainConsumerPrefix(ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG),
        FirstRecordInterceptor.class.getName());
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    if (o.lingerMs != null)
      props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), o.lingerMs);
    // Kafka Streams 4.1 does not leave the group at close (only static members
    // can be removed), so a later run with the same application id (W5's
    // restore) waits for this member's session to expire; W5 shortens it.
    if (o.sessionTimeoutMs != null) {
      props.put(
          StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG),
          o.sessionTimeoutMs);
      props.put(
          StreamsConfig.mainConsumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG),
          String.valueOf(Math.max(100, Long.parseLong(o.sessionTimeoutMs) / 4)));
    }

    Map<String, Object> result = new HashMap<>();
    result.put("system", "kafka-streams");
    result.put("workload", o.workload);
    result.put("threads", o.threads);

    KafkaStreams streams = new KafkaStreams(topology(o.workload, o), props);
    AtomicLong runningMs = new AtomicLong();
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.RUNNING
              && runningMs.compareAndSet(0, System.currentTimeMillis())
              && o.readyFile != null) {
            try {
              Files.writeString(Path.of(o.readyFile), "running\n");
            } catch (IOException e) {
              System.err.println("kafka-streams bench: cannot write " + o.readyFile + ": " + e);
            }
          }
        });
    Restores restores = new Restores();
    streams.setGlobalStateRestoreListener(restores);
    streams.setUncaughtExceptionHandler(
        e -> {
          System.err.println("kafka-streams bench: " + e);
          return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
              .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });

    long startMs = System.currentTimeMillis();
    streams.start();

    // Interactive queries while the workload runs.
    List<Long> readNanos = new ArrayList<>();
    AtomicLong readsUnavailable = new AtomicLong();
    java.util.concurrent.atomic.AtomicBoolean reading =
        new java.util.concurrent.atomic.AtomicBoolean(o.queryKeys > 0);
    Thread reader =
        new Thread(
            () -> {
              while (reading.get() && runningMs.get() == 0) sleep(5);
              long timedFrom = System.currentTimeMillis() + o.querySkipMs;
              Random random = new Random(7);
              ReadOnlyKeyValueStore<String, Long> counts = null;
              while (reading.get()) {
                String key = "u" + Long.remainderUnsigned(random.nextLong(), o.queryKeys);
                long start = System.nanoTime();
                try {
                  if (counts == null)
                    counts =
                        streams.store(
                            StoreQueryParameters.fromNameAndType(
                                "counts", QueryableStoreTypes.<String, Long>keyValueStore()));
                  counts.get(key);
                } catch (InvalidStateStoreException e) {
                  readsUnavailable.incrementAndGet();
                  counts = null;
                  continue;
                }
                if (System.currentTimeMillis() >= timedFrom)
                  readNanos.add(System.nanoTime() - start);
              }
            });
    if (o.queryKeys > 0) reader.start();
    long deadline = startMs + o.timeoutS * 1000;
    boolean restore = o.workload.equals("w5-restore");
    boolean timedOut = false;
    long processed = 0;
    GroupProgress groupProgress = o.groupProgress == null ? null : new GroupProgress(o.groupProgress);
    while (true) {
      KafkaStreams.State state = streams.state();
      if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.NOT_RUNNING
          || state == KafkaStreams.State.PENDING_ERROR) {
        result.put("error", "Kafka Streams stopped in state " + state);
        break;
      }
      if (restore) {
        if (restores.ended.size() >= o.partitions) break;
      } else {
        processed = processed(streams);
        long done = groupProgress == null ? processed : groupProgress.update(processed);
        if (done >= o.expect) break;
      }
      if (System.currentTimeMillis() > deadline) {
        timedOut = true;
        break;
      }
      Thread.sleep(20);
    }
    long doneMs = System.currentTimeMillis();
    long doneCpu = cpuNanos();
    reading.set(false);
    if (o.queryKeys > 0) reader.join();
    streams.close(Duration.ofSeconds(60));
    long closedMs = System.currentTimeMillis();
    long closedCpu = cpuNanos();

    result.put("processed", restore ? 0 : Math.max(processed, processed(streams)));
    result.put("start_ms", startMs);
    result.put("running_ms", runningMs.get());
    result.put("first_record_ms", firstRecordMs.get());
    result.put("done_ms", doneMs);
    result.put("closed_ms", closedMs);
    result.put("cpu_first_s", firstRecordCpuNanos.get() / 1e9);
    result.put("cpu_done_s", doneCpu / 1e9);
    result.put("cpu_closed_s", closedCpu / 1e9);
    result.put("timed_out", timedOut);
    if (restore) {
      result.put("restored_records", restores.restored.get());
      result.put("restore_start_ms", restores.firstStartMs.get());
      result.put("restore_end_ms", restores.lastEndMs.get());
      result.put("restored_partitions", restores.ended.size());
    }
    if (o.queryKeys > 0) {
      Collections.sort(readNanos);
      result.put("query_reads", (long) readNanos.size());
      result.put("query_p50_ms", percentileMs(readNanos, 0.50));
      result.put("query_p99_ms", percentileMs(readNanos, 0.99));
      result.put("query_unavailable", readsUnavailable.get());
    }
    System.out.println(toJson(result));
    System.out.flush();
    System.exit(timedOut || result.containsKey("error") ? 3 : 0);
  }

  /**
   * The instances of one application sharing a directory, each keeping its count of processed
   * records there, as bench_rill's GroupProgress: every instance stops once the group has
   * processed the input.
   */
  static final class GroupProgress {
    final Path dir;
    final Path mine;
    long published = -1;

    GroupProgress(String dir) throws IOException {
      this.dir = Path.of(dir);
      Files.createDirectories(this.dir);
      this.mine = this.dir.resolve(Long.toString(ProcessHandle.current().pid()));
    }

    long update(long processed) throws IOException {
      if (processed != published) {
        Path tmp = dir.resolve(mine.getFileName() + ".tmp");
        Files.writeString(tmp, Long.toString(processed));
        Files.move(tmp, mine, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        published = processed;
      }
      long total = 0;
      try (var entries = Files.list(dir)) {
        for (Path entry : (Iterable<Path>) entries::iterator) {
          if (entry.getFileName().toString().endsWith(".tmp")) continue;
          try {
            total += Long.parseLong(Files.readString(entry).trim());
          } catch (NumberFormatException | java.nio.file.NoSuchFileException e) {
            // written by another instance between listing and reading
          }
        }
      }
      return total;
    }
  }

  static double percentileMs(List<Long> sortedNanos, double p) {
    if (sortedNanos.isEmpty()) return 0.0;
    return sortedNanos.get((int) (p * (sortedNanos.size() - 1))) / 1e6;
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static String toJson(Map<String, Object> map) {
    StringBuilder out = new StringBuilder("{");
    for (Map.Entry<String, Object> e : map.entrySet()) {
      if (out.length() > 1) out.append(',');
      out.append('"').append(e.getKey()).append("\":");
      Object v = e.getValue();
      if (v instanceof String s) {
        out.append('"').append(s.replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
      } else if (v instanceof Double d) {
        out.append(String.format(Locale.ROOT, "%.6f", d));
      } else {
        out.append(v);
      }
    }
    return out.append('}').toString();
  }
}
