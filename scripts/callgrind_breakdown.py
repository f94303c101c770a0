#!/usr/bin/env python3
"""Per-record instruction breakdown of fleetstorm's producer thread from callgrind output.

Usage: callgrind_breakdown.py RECORDS OUT-PREFIX [LABEL]
OUT-PREFIX is what --callgrind-out-file was given with --separate-threads=yes; the thread with
the most instructions is the producer thread. Prints one JSON line: instructions per record by
category (exclusive costs of each function, grouped by name), and the top functions.
"""
import glob, json, re, subprocess, sys

CATEGORIES = [  # first match wins
    ("schedule", r"plan::|Schedule|Calendar|QuadHeap|heap::|calendar::|pacer::|insertion_sort|driftsort|sort::"),
    ("encode (envelope, key, value copy)", r"wire::|ids::|IdPattern|Filler|__memcpy|__memmove|memset"),
    ("recording (histograms, ledger, offsets)", r"hdrhistogram|recorder::|Hist|ProducerWindow|PartitionTally|OffsetBook|Acks::|settle|Link::poll|delivery|Lender|book::"),
    ("waiting and clock", r"timespec|clock_gettime|Instant|Timeout|Deadline|cnd_timedwait|futex|pthread_cond|rd_kafka_q_pop_serve|rd_kafka_q_serve|rd_kafka_queue_poll|rd_kafka_poll"),
    ("librdkafka produce call", r"rd_kafka_producev|producev|rd_kafka_msg_new|partitioner|crc32|murmur|rd_kafka_toppar|rd_kafka_msgq|rd_kafka_topic|rwlock|rd_kafka_msg_"),
    ("librdkafka delivery reports", r"rd_kafka_event|rd_kafka_dr|rd_kafka_message|rd_kafka_op|rdkafka::producer|BorrowedMessage"),
    ("allocator and locks", r"malloc|_int_free|free|cfree|unlink_chunk|mutex|tcache"),
]

def main():
    records = int(sys.argv[1]); prefix = sys.argv[2]; label = sys.argv[3] if len(sys.argv) > 3 else prefix
    files = [f for f in glob.glob(prefix + "-*")]
    def total(f):
        for line in open(f, errors="replace"):
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        return 0
    f = max(files, key=total)
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100", f], capture_output=True, text=True).stdout
    cats = {c: 0 for c, _ in CATEGORIES}; cats["other"] = 0
    funcs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        n = int(m.group(1).replace(",", "")); name = m.group(2).split(" [")[0]
        name = name.split(":", 1)[1] if ":" in name.split("<")[0] else name
        funcs[name] = funcs.get(name, 0) + n
        for c, pat in CATEGORIES:
            if re.search(pat, name):
                cats[c] += n; break
        else:
            cats["other"] += n
    per = {c: round(v / records, 1) for c, v in cats.items()}
    top = sorted(funcs.items(), key=lambda kv: -kv[1])[:15]
    print(json.dumps({"label": label, "records": records, "thread_file": f,
                      "instructions_per_record": round(total(f) / records, 1), "by_category": per,
                      "top": [[k[:100], round(v / records, 1)] for k, v in top]}))

main()
