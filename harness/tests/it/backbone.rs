//! The target's own metrics (issue 13): a metrics source that is down or answers garbage is a
//! warning and a count in the report, never a failed run; the agentless source (metadata) still
//! samples the embedded cluster.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::common::*;
use fleetstorm::report::schema::SourceKind;

/// An HTTP server on loopback that answers every request with 200 and text that is not the
/// Prometheus format; it stops with the test process.
fn garbage_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<html>{\"not\": \"metrics\"} \u{1f4a5}\n\0\0garbage{{{ 12 x\n";
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_source_that_is_down_or_answers_garbage_is_a_warning_and_the_run_completes() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (garbage, closed) = (garbage_server(), closed_port());
    let profile = write(
        dir.path(),
        "p.yaml",
        &format!(
            "name: embedded-watched\nkind: embedded\nmetrics:\n  admin_interval: 1s\n  prometheus:\n    \
             - {{url: \"http://127.0.0.1:{garbage}/metrics\", broker: 1}}\n    \
             - {{url: \"http://127.0.0.1:{closed}/metrics\", broker: 2}}\n"
        ),
    );
    let scenario = write(dir.path(), "s.yaml", &small_scenario("bb", 300, "4s"));
    let out = dir.path().join("out");
    let o = bin().arg("run").arg(&scenario).arg("--profile").arg(&profile).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&out);
    let a = &r.audit.counts;
    assert!(a.acked > 0 && a.lost == 0 && a.duplicates == 0, "{a:?}");
    let b = r.backbone.as_ref().expect("a backbone section");
    let source = |port: u16| b.sources.iter().find(|s| s.name.contains(&format!(":{port}/"))).unwrap();
    for (port, says) in [(garbage, "none of the"), (closed, "could not connect")] {
        let s = source(port);
        assert!(s.failures >= 3 && s.samples == 0, "{s:?}");
        assert!(s.last_error.as_deref().unwrap_or_default().contains(says), "{s:?}");
        assert!(
            r.warnings.iter().any(|w| w.starts_with(&format!("backbone: metrics source http://127.0.0.1:{port}/"))),
            "{:?}",
            r.warnings
        );
    }
    // Nothing came from the broken sources; the metadata still sampled the cluster every second.
    assert!(b.series.iter().all(|s| s.kind == SourceKind::Admin), "{:?}", b.series);
    let admin = b.sources.iter().find(|s| s.kind == SourceKind::Admin).unwrap();
    assert!(admin.samples >= 4 && admin.failures == 0, "{admin:?}");
    assert!(text(&o).contains("backbone"), "{}", text(&o));
}
