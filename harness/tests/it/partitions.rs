//! Hot partitions end to end on the embedded cluster: the shipped `hot-partitions.yaml` skews its
//! devices' activity, and the report shows how unevenly the partitions were loaded, in
//! report.json, summary.md and report.html alike.

use crate::common;

use common::*;

#[test]
fn skewed_devices_make_hot_partitions_and_every_format_shows_them() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = bin()
        .arg("run")
        .arg(root().join("scenarios/hot-partitions.yaml"))
        .args(["--duration", "15s", "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let a = &r.audit.counts;
    assert_eq!((a.lost, a.duplicates), (0, 0), "{a:?}");
    let p = r.partitions.as_ref().expect("report.partitions");
    assert_eq!((p.untracked_partitions, p.untracked_acked), (0, 0));
    // Zipf 1.1 over 20,000 meters: the busiest 2 of the 18 partitions (even: 11%) carry a
    // quarter of the readings or more.
    let readings = &p.topics["meters.readings"];
    assert_eq!((readings.partitions, readings.hottest.len()), (18, 2));
    assert!(readings.hottest_share >= 0.25, "{readings:?}");
    // 10 gateways (0.05%) at 1000x send a third of the status events: the busiest 2 of the 12
    // partitions carry well over their even 17%.
    let status = &p.topics["meters.status"];
    assert_eq!((status.partitions, status.hottest.len()), (12, 2));
    assert!(status.hottest_share >= 0.22, "{status:?}");
    for t in [readings, status] {
        assert!(t.hottest_p99_us.is_some() && t.rest_p99_us.is_some(), "{t:?}");
        let acked: u64 = t.lines.iter().map(|l| l.acked).sum();
        assert_eq!(acked, t.acked);
        assert!(t.lines.iter().all(|l| l.p99_us >= l.p50_us && l.p50_us > 0), "{t:?}");
        let hottest = t.lines.iter().find(|l| l.partition == t.hottest[0]).unwrap();
        assert!(t.lines.iter().all(|l| l.acked <= hottest.acked));
        assert!((t.lines.iter().map(|l| l.share).sum::<f64>() - 1.0).abs() < 0.01);
    }
    // Per-partition counts are after warm-up: at most what was acknowledged in all.
    assert!(readings.acked + status.acked <= r.produce.acked && readings.acked > 0);
    eprintln!(
        "hot partitions: readings hottest {:?} carried {:.1}% (p99 {:?} vs rest {:?}); status hottest {:?} carried {:.1}%",
        readings.hottest,
        readings.hottest_share * 100.0,
        readings.hottest_p99_us,
        readings.rest_p99_us,
        status.hottest,
        status.hottest_share * 100.0
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Partitions"), "{summary}");
    assert!(summary.contains("| topic | partitions | acked/s | hottest tenth |"), "{summary}");
    assert!(summary.contains("`meters.readings["), "{summary}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"partitions\""), "the HTML has a partitions section");
    assert!(html.contains("<th>hottest tenth</th>") && html.contains("<code>meters.status[11]</code>"));
    // The terminal summary says it in one line per topic.
    let terminal = text(&o);
    assert!(terminal.contains("partitions meters.readings: hottest tenth"), "{terminal}");
}
