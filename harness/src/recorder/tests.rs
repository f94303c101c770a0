use std::sync::Arc;

use super::*;

fn collector(groups: &[&str], warmup_us: u64) -> (Collector, Arc<OffsetBook>, Hist) {
    let template = Hist::template().unwrap();
    let mut book = OffsetBook::new(&[2], &[10, 20]);
    let readers: Vec<usize> = groups.iter().map(|_| book.add_reader(&[0], &[10, 20])).collect();
    let book = Arc::new(book);
    let c = Collector::new(CollectorConfig {
        live: Arc::new(LiveCounters::default()),
        hlog: None,
        classes: 1,
        versions: Vec::new(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        group_readers: readers,
        warmup_us,
        load_end_us: u64::MAX,
        template: template.clone(),
        book: book.clone(),
        start: Arc::new(OnceLock::new()),
    });
    (c, book, template)
}

fn producer_window(t: &Hist, acked: u64, latency_us: u64) -> WindowData {
    let mut w = ProducerWindow::new(1, 1, t);
    w.classes[0].sent = acked;
    w.classes[0].acked = acked;
    w.classes[0].acked_bytes = acked * 100;
    for _ in 0..acked {
        w.classes[0].from_intended.record(latency_us);
        w.classes[0].from_send.record(latency_us / 2);
        w.send_lag.record(3);
    }
    WindowData::Producer(Box::new(w))
}

#[test]
fn windows_from_several_sources_merge_into_timeline_and_totals() {
    let (mut c, _book, t) = collector(&["g"], 0);
    let a = c.source();
    let b = c.source();
    let handle = c.spawn().unwrap();
    a.send(0, producer_window(&t, 10, 1000));
    b.send(0, producer_window(&t, 5, 3000));
    a.send(2, producer_window(&t, 7, 2000));
    let mut cw = ConsumerWindow::new(&t);
    cw.consumed = 12;
    cw.e2e.record(5000);
    b.send(1, WindowData::Consumer { group: 0, window: Box::new(cw) });
    a.done();
    b.done();
    drop((a, b));
    let rec = handle.join().unwrap();
    assert_eq!(rec.timeline.len(), 3, "second 1 is filled in");
    assert_eq!(rec.timeline[0].acked, 15);
    assert_eq!(rec.timeline[1].acked, 0);
    assert_eq!(rec.timeline[1].consumers["g"].consumed, 12);
    assert_eq!(rec.timeline[2].acked, 7);
    let total: u64 = rec.timeline.iter().map(|p| p.acked).sum();
    assert_eq!(total, rec.classes[0].acked);
    assert_eq!(rec.classes[0].from_intended.len(), 22);
    assert_eq!(rec.groups[0].consumed, 12);
    assert_eq!(rec.groups[0].e2e.len(), 1);
    // The window p99 of second 0 comes from both sources' samples.
    assert!(rec.timeline[0].produce.max_us >= 2990);
}

#[test]
fn warmup_is_left_out_of_histograms_but_not_counts() {
    let (mut c, _book, t) = collector(&[], 2_000_000);
    let a = c.source();
    let handle = c.spawn().unwrap();
    for s in 0..5 {
        a.send(s, producer_window(&t, 10, 100));
    }
    a.done();
    drop(a);
    let rec = handle.join().unwrap();
    assert_eq!(rec.classes[0].acked, 50);
    assert_eq!(rec.classes[0].measured_acked, 30);
    assert_eq!(rec.classes[0].from_intended.len(), 30);
    assert_eq!(rec.send_lag.len(), 30);
}

#[test]
fn values_above_an_hour_are_clamped_and_counted() {
    let mut h = Hist::template().unwrap();
    h.record(5);
    h.record(HIST_MAX_US * 3);
    let s = h.summary();
    assert_eq!(s.count, 2);
    assert_eq!(s.clamped, 1);
    assert!(s.max_us >= HIST_MAX_US - HIST_MAX_US / 1000);
}

#[test]
fn lag_is_end_minus_position_over_the_readers_partitions() {
    let mut book = OffsetBook::new(&[2, 1], &[100, 200, 50]);
    let r = book.add_reader(&[0], &[100, 200, 50]);
    assert_eq!(book.lag(r), 0);
    book.acked(0, 149, 10, 0, 1);
    book.acked(1, 209, 10, 0, 1);
    assert_eq!(book.lag(r), 60);
    book.consumed(r, 0, 139);
    assert_eq!(book.lag(r), 20);
    // Topic 1 is not this reader's.
    book.acked(2, 99, 1, 0, 1);
    assert_eq!(book.lag(r), 20);
    book.caught_up(r, 1, 210);
    assert_eq!(book.lag(r), 10);
    assert_eq!(book.index(1, 0), Some(2));
    assert_eq!(book.index(0, 2), None);
}

#[test]
fn window_clock_rolls_once_per_second() {
    let mut w = WindowClock::default();
    assert_eq!(w.roll(999_999), None);
    assert_eq!(w.roll(1_000_000), Some(0));
    assert_eq!(w.roll(1_500_000), None);
    assert_eq!(w.roll(4_000_000), Some(1));
    assert_eq!(w.current(), 4);
}

#[test]
fn a_watch_records_the_first_ack_of_records_sent_after_it() {
    let book = OffsetBook::new(&[3], &[0, 0, 0]);
    let slot = book.arm_watch(1_000).unwrap();
    book.acked(0, 1, 1, 900, 1_500); // sent before the watch: ignored
    book.acked(0, 2, 1, 1_100, 4_000);
    book.acked(0, 3, 1, 1_200, 3_000); // acknowledged earlier, out of order
    book.acked(1, 1, 1, 2_000, 2_500);
    assert_eq!(book.watch_result(slot), vec![Some(3_000), Some(2_500), None]);
    book.release_watch(slot);
    let again = book.arm_watch(5_000).unwrap();
    assert_eq!(again, slot, "released slots are reused");
    assert_eq!(book.watch_result(again), vec![None, None, None]);
    let others: Vec<_> = (1..WATCH_SLOTS).map(|_| book.arm_watch(0)).collect();
    assert!(others.iter().all(Option::is_some));
    assert_eq!(book.arm_watch(0), None, "all slots busy");
}

#[test]
fn a_group_reader_of_one_shard_counts_only_the_partitions_it_read() {
    let mut book = OffsetBook::new(&[3], &[0, 0, 0]);
    let r = book.add_reader(&[0], &[0, 0, 0]);
    book.set_local_only(r);
    for p in 0..3 {
        book.acked(p, 99, 10, 0, 0);
    }
    assert_eq!(book.lag(r), 0, "nothing read here yet: the other shards' members read these");
    book.consumed(r, 1, 49);
    assert_eq!(book.lag(r), 50, "partition 1 is read here, half way");
    let whole = book.add_reader(&[0], &[0, 0, 0]);
    assert_eq!(book.lag(whole), 300, "a whole-fleet reader counts every partition");
}
