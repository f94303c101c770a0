//! Micro-benchmarks of the harness's per-record costs (BENCHMARKS.md, part d).
//!
//! - `recorder/*`: what recording one sample costs: one latency into a histogram, and the whole
//!   bookkeeping of one acknowledgement (two latencies, counters, the audit's ack ledger and the
//!   partition's offset book) or of one audited read; `group_read`: everything a consumer-group
//!   member records for one record it reads (envelope decode, the offset book, the group's ledger,
//!   the end-to-end and age histograms, the window's counters), as `driver/consumer.rs` does.
//! - `schedule/next`: producing the next event of a 10,000-device fleet (the priority queue, the
//!   device's next arrival, size and firmware).
//!
//! Run with `cargo bench --bench hot_path` (scripts/bench.sh does).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetstorm::config;
use fleetstorm::plan::Plan;
use fleetstorm::recorder::audit::{AckLedger, SeenLedger, Stream};
use fleetstorm::recorder::{ConsumerWindow, Hist, OffsetBook, ProducerWindow};

/// A deterministic stream of plausible latencies (µs) and devices.
struct Samples(u64);

impl Samples {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn recorder(c: &mut Criterion) {
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(1));
    let template = Hist::template().expect("histogram bounds are valid");

    let mut h = template.empty_like();
    let mut s = Samples(1);
    g.bench_function("hist_record", |b| b.iter(|| h.record(black_box(200 + s.next() % 20_000))));

    // One acknowledgement, as the producer's delivery report records it.
    let mut window = ProducerWindow::new(2, 2, &template);
    let mut ledger = AckLedger::default();
    let book = OffsetBook::new(&[12], &[0; 12]);
    let mut s = Samples(2);
    let mut seq = vec![0u64; 10_000];
    let mut offset = [0i64; 12];
    g.bench_function("producer_ack", |b| {
        b.iter(|| {
            let r = s.next();
            let device = (r % 10_000) as u32;
            let p = (device % 12) as usize;
            let lat = 500 + r % 5_000;
            window.acked(0, (device & 1) as usize, 100, lat + 20, lat);
            ledger.acked(Stream { class: 0, device }, seq[device as usize], (r % 60) as u32, p);
            seq[device as usize] += 1;
            book.acked(p, offset[p], 100, r, r + lat);
            offset[p] += 1;
        })
    });

    // One record read by the audit.
    let mut seen = SeenLedger::default();
    let mut s = Samples(3);
    let mut seq = vec![0u64; 10_000];
    let mut e2e = template.empty_like();
    g.bench_function("audit_read", |b| {
        b.iter(|| {
            let r = s.next();
            let device = (r % 10_000) as u32;
            e2e.record(1_000 + r % 10_000);
            seen.saw(Stream { class: 0, device }, seq[device as usize], (r % 60) as u32);
            seq[device as usize] += 1;
        })
    });

    // One record read by a consumer-group member of the run that wrote it.
    let filler = fleetstorm::wire::Filler::new(1);
    let payloads: Vec<Vec<u8>> = (0..1024u32)
        .map(|i| {
            let stamp = fleetstorm::wire::Stamp {
                run: 7,
                device: i * 9 % 10_000,
                class: 0,
                firmware: 0,
                seq: u64::from(i),
                created_us: 1_000,
                intended_us: 2_000,
            };
            let (mut out, mut cursor) = (Vec::new(), 0);
            fleetstorm::wire::encode(
                config::scenario::ValueFormat::Binary,
                &stamp,
                b"",
                100,
                &filler,
                &mut cursor,
                &mut out,
            );
            out
        })
        .collect();
    let ledger = fleetstorm::driver::group::GroupLedger::default();
    let book = {
        let mut b = OffsetBook::new(&[12], &[0; 12]);
        b.add_reader(&[0], &[0; 12]);
        b
    };
    let mut window = ConsumerWindow::new(&template);
    let mut s = Samples(4);
    let mut seq = vec![0u64; 10_000];
    let mut i = 0usize;
    // The envelope is decoded from a real payload; the ledger is keyed like `audit_read` (10,000
    // devices at random, each with its next sequence number), as a replay of a fleet's log reads.
    g.bench_function("group_read", |b| {
        b.iter(|| {
            let r = s.next();
            let payload = &payloads[i];
            i = (i + 1) % payloads.len();
            let now = 10_000 + r % 10_000;
            let device = (r % 10_000) as u32;
            book.consumed(0, device as usize % 12, black_box(r as i64));
            window.consumed += 1;
            window.bytes += payload.len() as u64;
            if let Some(st) = fleetstorm::wire::decode(black_box(payload))
                && st.run == 7
            {
                let stream = Stream { class: st.class, device };
                if ledger.first_read(stream, seq[device as usize]) {
                    window.e2e.record(now.saturating_sub(st.intended_us));
                    window.age.record(now.saturating_sub(st.created_us));
                } else {
                    window.rereads += 1;
                }
                seq[device as usize] += 1;
            }
        })
    });
    g.finish();
}

fn schedule(c: &mut Criterion) {
    let text = "name: bench\nseed: 1\nduration: 1h\ntopics: [{name: t}]\n\
                fleet:\n  devices: 10000\n  classes: [{name: m, topic: t, rate: 10/1s, size: 100B, format: binary}]\n";
    let s = config::parse_scenario("(bench)", text).expect("valid scenario");
    let plan = Plan::from_scenario(&s);
    let mut schedule = plan.schedule(0, 1);
    let mut g = c.benchmark_group("schedule");
    g.throughput(Throughput::Elements(1));
    g.bench_function("next", |b| b.iter(|| black_box(schedule.next())));
    g.finish();
}

criterion_group!(benches, recorder, schedule);
criterion_main!(benches);
