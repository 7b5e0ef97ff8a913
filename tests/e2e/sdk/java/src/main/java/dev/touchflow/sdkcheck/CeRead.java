package dev.touchflow.sdkcheck;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.cloudevents.CloudEvent;
import io.cloudevents.kafka.CloudEventDeserializer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads topics from the beginning and decodes every record with the CloudEvents Java
 * SDK: CloudEventDeserializer picks structured or binary mode from the headers itself.
 *
 *   java -cp ... dev.touchflow.sdkcheck.CeRead BROKERS EXPECTED IDLE_MS TIMEOUT_MS TOPIC...
 *
 * Prints one JSON line per event (topic, partition, offset, key, mode, id, type,
 * subject, source, time in UTC with milliseconds, data); exits 1 naming every record
 * that did not decode, or when the count is not EXPECTED.
 */
public final class CeRead {
    private static final DateTimeFormatter UTC_MS = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: CeRead BROKERS EXPECTED IDLE_MS TIMEOUT_MS TOPIC...");
            System.exit(2);
        }
        String brokers = args[0];
        int expect = Integer.parseInt(args[1]);
        long idleMs = Long.parseLong(args[2]);
        long timeoutMs = Long.parseLong(args[3]);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        // A throwaway group: offsets are never committed, partitions are assigned by hand.
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "ce-sdk-java." + UUID.randomUUID());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, CloudEventDeserializer.class.getName());

        ObjectMapper json = new ObjectMapper();
        List<String> bad = new ArrayList<>();
        int n = 0;
        try (KafkaConsumer<String, CloudEvent> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (int i = 4; i < args.length; i++) {
                List<PartitionInfo> infos = c.partitionsFor(args[i], Duration.ofSeconds(10));
                if (infos == null || infos.isEmpty()) {
                    System.err.println("CeRead: topic " + args[i] + " not found");
                    System.exit(1);
                }
                for (PartitionInfo pi : infos) parts.add(new TopicPartition(pi.topic(), pi.partition()));
            }
            c.assign(parts);
            c.seekToBeginning(parts);

            long deadline = System.currentTimeMillis() + timeoutMs;
            long last = System.currentTimeMillis();
            while (System.currentTimeMillis() < deadline) {
                // Idle: stop once nothing came for IDLE_MS after the expected count.
                if (n + bad.size() >= expect && System.currentTimeMillis() - last > idleMs) break;
                Iterable<ConsumerRecord<String, CloudEvent>> recs;
                try {
                    recs = c.poll(Duration.ofMillis(200));
                } catch (RecordDeserializationException e) {
                    // The deserializer threw: name the record, step over it, go on.
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    bad.add(e.topicPartition() + "@" + e.offset() + ": " + cause.getClass().getName() + ": " + cause.getMessage());
                    c.seek(e.topicPartition(), e.offset() + 1);
                    last = System.currentTimeMillis();
                    continue;
                }
                for (ConsumerRecord<String, CloudEvent> r : recs) {
                    last = System.currentTimeMillis();
                    String where = r.topic() + "-" + r.partition() + "@" + r.offset() + " (key " + r.key() + ")";
                    try {
                        System.out.println(json.writeValueAsString(line(json, r)));
                        n++;
                    } catch (Exception e) {
                        bad.add(where + ": " + e.getClass().getName() + ": " + e.getMessage());
                    }
                }
            }
        }
        System.out.flush();
        for (int i = 0; i < Math.min(20, bad.size()); i++) System.err.println("CeRead: record did not decode: " + bad.get(i));
        if (!bad.isEmpty()) {
            System.err.println("CeRead: " + bad.size() + " of " + (n + bad.size()) + " records did not decode");
            System.exit(1);
        }
        if (n != expect) {
            System.err.println("CeRead: decoded " + n + " records, expected " + expect);
            System.exit(1);
        }
    }

    private static ObjectNode line(ObjectMapper json, ConsumerRecord<String, CloudEvent> r) throws Exception {
        CloudEvent ev = r.value();
        if (ev == null) throw new IllegalStateException("no event (null value)");
        Header ct = r.headers().lastHeader("content-type");
        String ctype = ct == null ? "" : new String(ct.value(), StandardCharsets.UTF_8);
        ObjectNode o = json.createObjectNode();
        o.put("topic", r.topic());
        o.put("partition", r.partition());
        o.put("offset", r.offset());
        o.put("key", r.key());
        // Informational: the deserializer chose the mode by the same rule.
        o.put("mode", ctype.startsWith("application/cloudevents") ? "structured" : "binary");
        o.put("id", ev.getId());
        o.put("type", ev.getType());
        o.put("subject", ev.getSubject());
        o.put("source", ev.getSource().toString());
        o.put("time", ev.getTime() == null ? null : UTC_MS.format(ev.getTime().withOffsetSameInstant(ZoneOffset.UTC)));
        // touchflow's data is JSON in either mode: it must parse as such.
        JsonNode data = ev.getData() == null ? null : json.readTree(ev.getData().toBytes());
        o.set("data", data);
        return o;
    }
}
