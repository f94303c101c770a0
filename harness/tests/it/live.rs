//! `run --metrics-addr` (issue 13, item 3): an embedded run serving its live metrics on port 0,
//! scraped during the load and read with a real OpenMetrics parser (Python's `prometheus_client`,
//! installed by `scripts/openmetrics.sh install`, which `scripts/test.sh` runs). Without it the
//! test fails under CI and is skipped elsewhere.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

/// The python that imports `prometheus_client`, as `scripts/openmetrics.sh python` finds it.
fn parser_python() -> Option<String> {
    let o = Command::new(root().join("scripts/openmetrics.sh")).arg("python").output().ok()?;
    let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !p.is_empty()).then_some(p)
}

/// `GET /metrics`: the status line, the content type and the body; `None` when nothing answers.
fn scrape(addr: &str) -> Option<(String, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.to_string();
    let ctype = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_string();
    Some((status, ctype, body.to_string()))
}

/// Each scrape parsed by `prometheus_client.openmetrics.parser`: sample name with its sorted
/// labels → value, plus `TYPE:<family>` → its type. The parser raises on text it does not accept.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for text in json.load(sys.stdin):
    m = {}
    for fam in text_string_to_metric_families(text):
        m["TYPE:" + fam.name] = fam.type
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            m[f"{s.name}{{{labels}}}"] = s.value
    out.append(m)
json.dump(out, sys.stdout)
"#;

type Sample = BTreeMap<String, serde_json::Value>;

fn num(m: &Sample, key: &str) -> f64 {
    m.get(key).and_then(serde_json::Value::as_f64).unwrap_or_else(|| panic!("no sample `{key}` in {m:?}"))
}

/// The sum of the samples of `name` (any labels).
fn total(m: &Sample, name: &str) -> f64 {
    m.iter().filter(|(k, _)| k.starts_with(&format!("{name}{{"))).filter_map(|(_, v)| v.as_f64()).sum()
}

#[test]
fn live_metrics_are_served_during_the_run_and_add_up_to_the_report() {
    let Some(python) = parser_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: no python3 imports prometheus_client (scripts/openmetrics.sh install should have installed it)"
        );
        eprintln!("skipped: no python3 imports prometheus_client (run scripts/openmetrics.sh install)");
        return;
    };
    let _serial = serial();
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "live.yaml", &small_scenario("live", 2000, "6s"));
    let out = dir.path().join("out");
    let mut child = bin()
        .env("FLEETSTORM_LOG", "info")
        .args(["run", "--metrics-addr", "127.0.0.1:0", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr: the address line, then everything else (kept for failure messages).
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("serving live metrics on http://") {
                let url = &line[i + "serving live metrics on http://".len()..];
                let _ = tx.send(url.trim_end_matches("/metrics").to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        panic!("no `serving live metrics on` line on stderr:\n{}", reader.join().unwrap_or_default())
    };
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");

    // Scrape every 400 ms until the endpoint closes with the run.
    let mut texts = Vec::new();
    loop {
        match scrape(&addr) {
            Some((status, ctype, body)) => {
                assert!(status.contains(" 200 "), "{status}");
                assert!(ctype.starts_with("application/openmetrics-text; version=1.0.0"), "{ctype}");
                texts.push(body);
            }
            None if child.try_wait().unwrap().is_some() => break,
            None => {}
        }
        if began.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let status = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert!(status.success(), "{status}\n{log}");
    let r = read_report(&out);

    // The parser accepts every scrape.
    let mut py = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(serde_json::to_string(&texts).unwrap().as_bytes()).unwrap();
    let parsed = py.wait_with_output().unwrap();
    assert!(parsed.status.success(), "the OpenMetrics parser refused a scrape: {}", text(&parsed));
    let scrapes: Vec<Sample> = serde_json::from_slice(&parsed.stdout).unwrap();

    // At least two scrapes while records were being sent (not before, not after).
    let sent = |m: &Sample| total(m, "fleetstorm_records_sent_total");
    let during = scrapes.iter().filter(|m| sent(m) > 0.0 && sent(m) < r.produce.attempted as f64).count();
    assert!(during >= 2, "{during} scrapes during the load, of {}", scrapes.len());

    // Counters (and histogram buckets and counts) never go down between scrapes.
    for pair in scrapes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for (k, v) in a {
            let family = k.split('{').next().unwrap_or_default();
            let base = ["_total", "_bucket", "_count"].iter().find_map(|s| family.strip_suffix(s));
            let Some(base) = base else { continue };
            let kind = a.get(&format!("TYPE:{base}")).and_then(|t| t.as_str()).unwrap_or_default();
            if kind != "counter" && kind != "histogram" {
                continue;
            }
            let (before, after) = (v.as_f64().unwrap(), num(b, k));
            assert!(after >= before, "{k} went down between scrapes: {before} -> {after}");
        }
    }

    // The run's identity.
    let last = scrapes.last().unwrap();
    let info =
        format!("fleetstorm_run_info{{profile=embedded,run_id={},scenario=live,target_kind=embedded}}", r.run_id);
    assert_eq!(num(last, &info), 1.0, "{last:?}");

    // The last scrape is no more than the report's totals, and at most one second's worth short
    // of them (the endpoint serves until the report is written, so it is usually exact).
    let per_s =
        |f: fn(&fleetstorm::report::schema::TimelinePoint) -> u64| r.timeline.iter().map(f).max().unwrap_or(0) as f64;
    let checks = [
        ("sent", sent(last), r.produce.attempted as f64, per_s(|p| p.produced)),
        ("acked", total(last, "fleetstorm_records_acked_total"), r.produce.acked as f64, per_s(|p| p.acked)),
        (
            "ack latency count",
            total(last, "fleetstorm_ack_latency_seconds_count"),
            r.produce.acked as f64,
            per_s(|p| p.acked),
        ),
        ("planned", num(last, "fleetstorm_events_planned_total{}"), r.produce.planned as f64, per_s(|p| p.produced)),
        (
            "consumed",
            num(last, "fleetstorm_consumer_records_total{group=sink}"),
            r.consumers["sink"].consumed as f64,
            per_s(|p| p.consumers.get("sink").map_or(0, |g| g.consumed)),
        ),
    ];
    for (what, live, report, one_second) in checks {
        assert!(report > 0.0 && one_second > 0.0 && one_second < report, "{what}: report {report}, {one_second}/s");
        assert!(live <= report, "{what}: the last scrape says {live}, more than the report's {report}");
        assert!(
            report - live <= one_second,
            "{what}: the last scrape says {live}, more than one second ({one_second}) short of the report's {report}"
        );
    }
    assert_eq!(num(last, "fleetstorm_records_failed_total{class=telemetry}"), 0.0);
    assert!(began.elapsed() < Duration::from_secs(30), "took {:?}", began.elapsed());
    eprintln!(
        "{} scrapes ({during} during the load); last: sent {} of {}, acked {} of {}; {:.1} s",
        scrapes.len(),
        sent(last),
        r.produce.attempted,
        total(last, "fleetstorm_records_acked_total"),
        r.produce.acked,
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn a_bad_metrics_address_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "live.yaml", &small_scenario("livebad", 10, "2s"));
    let o =
        bin().args(["run", "--metrics-addr", "localhost", "--out"]).arg(dir.path().join("a")).arg(&scenario).output();
    let o = o.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--metrics-addr `localhost`: no port"), "{}", text(&o));
    assert!(!dir.path().join("a").exists(), "the run started");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = bin().args(["run", "--metrics-addr", &addr, "--out"]).arg(dir.path().join("b")).arg(&scenario).output();
    let o = o.unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains(&format!("--metrics-addr {addr}: cannot listen there")), "{}", text(&o));
    assert!(!dir.path().join("b").exists(), "the run started");
}
