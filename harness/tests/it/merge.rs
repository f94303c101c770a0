//! `fleetstorm merge`: shards of one campaign merged into one report, checked against the
//! shards' own files. Most tests use two short runs of one scenario stamped afterwards as shards
//! 0 and 1 of a campaign of 2 (cheap, and the stamps can be bent to test refusals); one runs three
//! real shard processes (`run --shards 3`) against a served embedded cluster, then merges them.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use fleetstorm::report::{CampaignInfo, Report};

const SCENARIO: &str = r#"
name: merge
seed: 11
duration: 6s
warmup: 1s
drain: 20s
topics: [{name: merge.t, partitions: 6, replication: 3}]
fleet:
  devices: 600
  classes:
    - {name: tel, topic: merge.t, rate: 1/1s, size: 300B}
    - {name: hb, topic: merge.t, rate: 1/2s, size: 64B, format: binary}
consumers:
  - {name: sink, members: 2, topics: [merge.t]}
"#;

/// Two finished shards of campaign `it`, made once for the module: (tempdir, [shard 0, shard 1]).
fn shards() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static SHARDS: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    SHARDS.get_or_init(|| {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let scenario = write(dir.path(), "merge.yaml", SCENARIO);
        let start_unix_ms = 1_796_000_000_000;
        let dirs: Vec<PathBuf> = (0..2)
            .map(|i| {
                let out = dir.path().join(format!("shard-{i}"));
                let o = bin().arg("run").arg(&scenario).arg("--out").arg(&out).arg("-q").output().unwrap();
                assert_eq!(o.status.code(), Some(0), "{}", text(&o));
                stamp(&out, |c| {
                    *c = Some(CampaignInfo {
                        id: "it".into(),
                        shard: i,
                        shards: 2,
                        start_unix_ms,
                        clock_skew_ms: Some(0.5 * f64::from(i)),
                    })
                });
                out
            })
            .collect();
        (dir, dirs)
    })
}

/// Rewrite a shard's report.json `campaign`.
fn stamp(dir: &Path, f: impl FnOnce(&mut Option<CampaignInfo>)) {
    let mut r = read_report(dir);
    f(&mut r.campaign);
    r.write(dir).unwrap();
}

/// A copy of a shard directory (report.json and .hlog files), to alter.
fn copy(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == "report.json" || n.ends_with(".hlog") {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
    to.to_path_buf()
}

fn merge(dirs: &[&Path], out: &Path, args: &[&str]) -> std::process::Output {
    bin().arg("merge").args(dirs).arg("--out").arg(out).args(args).output().unwrap()
}

/// One histogram per tag (and `""` for all) of every interval at or after `from_s` in the logs.
fn histograms(logs: &[PathBuf], from_s: f64) -> BTreeMap<String, hdrhistogram::Histogram<u64>> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut out: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    let mut d = Deserializer::new();
    for p in logs {
        let bytes = std::fs::read(p).unwrap();
        for e in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(i) = e.unwrap() {
                if i.start_timestamp().as_secs_f64() + 1e-6 < from_s {
                    continue;
                }
                let raw = base64::engine::general_purpose::STANDARD.decode(i.encoded_histogram()).unwrap();
                let h: hdrhistogram::Histogram<u64> = d.deserialize(&mut raw.as_slice()).unwrap();
                let tag = i.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                for key in [tag, String::new()] {
                    match out.get_mut(&key) {
                        Some(all) => all.add(&h).unwrap(),
                        None => {
                            out.insert(key, h.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn merged_counts_are_the_shards_sums_and_latencies_those_of_all_their_samples() {
    let (dir, s) = shards();
    let out = dir.path().join("merged");
    let o = merge(&[&s[1], &s[0]], &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("merged/report.json"), "{stdout}");
    let (a, b, m) = (read_report(&s[0]), read_report(&s[1]), read_report(&out));

    let info = m.merged.as_ref().expect("merged info");
    assert_eq!(
        (info.campaign.as_str(), info.shards, info.merged.clone(), info.missing.clone()),
        ("it", 2, vec![0, 1], vec![])
    );
    assert_eq!(info.per_shard.iter().map(|x| x.acked).collect::<Vec<_>>(), vec![a.produce.acked, b.produce.acked]);
    assert_eq!(info.per_shard[1].clock_skew_ms, Some(0.5));
    assert!(m.campaign.is_none());
    assert_eq!(m.produce.acked, a.produce.acked + b.produce.acked);
    assert_eq!(m.produce.planned, a.produce.planned + b.produce.planned);
    assert_eq!(m.audit.counts.acked, a.audit.counts.acked + b.audit.counts.acked);
    assert_eq!(m.audit.counts.lost, a.audit.counts.lost + b.audit.counts.lost);
    assert_eq!(m.audit.complete, a.audit.complete && b.audit.complete);
    assert_eq!(m.consumers["sink"].consumed, a.consumers["sink"].consumed + b.consumers["sink"].consumed);
    assert_eq!(m.consumers["sink"].members, 4);
    for c in ["tel", "hb"] {
        assert_eq!(m.produce.classes[c].acked, a.produce.classes[c].acked + b.produce.classes[c].acked);
    }
    let t = 3;
    assert_eq!(m.timeline[t].acked, a.timeline[t].acked + b.timeline[t].acked);
    assert_eq!(
        m.timeline[t].consumers["sink"].lag,
        a.timeline[t].consumers["sink"].lag + b.timeline[t].consumers["sink"].lag
    );
    for x in a.warnings.iter().chain(&b.warnings) {
        assert!(
            m.warnings.iter().any(|w| w.starts_with("shard") && w.ends_with(x.as_str())),
            "{x} missing: {:?}",
            m.warnings
        );
    }

    // Latencies: the percentiles of one histogram of both shards' intervals after warm-up.
    let warmup = m.scenario.warmup_s;
    let logs = |name: &str| s.iter().map(|d| d.join(name)).collect::<Vec<_>>();
    let produce = histograms(&logs("produce-latency.hlog"), warmup);
    let all = &produce[""];
    let lat = &m.produce.latency_from_intended;
    assert_eq!(lat.count, all.len());
    assert!(lat.count > 1_000, "{lat:?}");
    assert_eq!(
        (lat.p50_us, lat.p99_us, lat.p999_us, lat.max_us),
        (all.value_at_quantile(0.5), all.value_at_quantile(0.99), all.value_at_quantile(0.999), all.max())
    );
    assert_eq!(m.produce.classes["tel"].latency_from_intended.p99_us, produce["tel"].value_at_quantile(0.99));
    let e2e = histograms(&logs("e2e-latency.hlog"), warmup);
    assert_eq!(m.consumers["sink"].e2e_latency.p99_us, e2e["sink"].value_at_quantile(0.99));
    // Every second's p99, too.
    for p in m.timeline.iter().filter(|p| p.produce.count > 0).take(4) {
        let second = histograms(&logs("produce-latency.hlog"), f64::from(p.t));
        let before = histograms(&logs("produce-latency.hlog"), f64::from(p.t + 1));
        let n = second[""].len() - before.get("").map_or(0, |h| h.len());
        assert_eq!(p.produce.count, n, "second {}", p.t);
    }
    // The merged logs hold the merged intervals: read back, they give the same totals.
    let merged_logs = histograms(&[out.join("produce-latency.hlog")], warmup);
    assert_eq!(merged_logs[""].value_at_quantile(0.99), lat.p99_us);
    assert_eq!(merged_logs[""].len(), lat.count);
    for f in ["summary.md", "report.html", "latency.svg", "throughput.png", "e2e-latency.hlog", "send-lag.hlog"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("junit.xml").exists(), "no gates, no JUnit");

    // compare and compare --baseline take a merged report.
    let o = bin().arg("compare").arg(&s[0]).arg(&out).arg("--out").arg(dir.path().join("bake")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin()
        .args(["compare", "--baseline"])
        .arg(&out)
        .arg(&out)
        .arg("--out")
        .arg(dir.path().join("baseline"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "a merged report against itself: {}", text(&o));
    assert!(Report::read(&out).is_ok());
}

#[test]
fn a_missing_shard_is_refused_and_allow_partial_marks_the_report() {
    let (dir, s) = shards();
    let out = dir.path().join("partial");
    let o = merge(&[&s[1]], &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("campaign `it`: shard(s) 0 of 2 missing"), "{err}");
    assert!(err.contains("--allow-partial"), "{err}");
    assert!(!out.join("report.json").exists());

    let o = merge(&[&s[1]], &out, &["--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = read_report(&out);
    let info = m.merged.as_ref().unwrap();
    assert_eq!((info.merged.clone(), info.missing.clone()), (vec![1], vec![0]));
    assert!(m.warnings[0].starts_with("PARTIAL: shard(s) 0 of 2 missing"), "{:?}", m.warnings);
    assert_eq!(m.produce.acked, read_report(&s[1]).produce.acked);
}

/// A change to a shard's report.
type Alter = Box<dyn Fn(&mut Report)>;

#[test]
fn shards_of_different_campaigns_scenarios_or_counts_are_refused() {
    let (dir, s) = shards();
    let cases: [(&str, Alter, &str); 3] = [
        ("campaign", Box::new(|r| r.campaign.as_mut().unwrap().id = "other".into()), "the campaign is `other`"),
        ("fingerprint", Box::new(|r| r.scenario.fingerprint = "f00d".into()), "the scenario fingerprint is `f00d`"),
        ("count", Box::new(|r| r.campaign.as_mut().unwrap().shards = 3), "the shard count is 3"),
    ];
    for (name, alter, expected) in cases {
        let bad = copy(&s[1], &dir.path().join(format!("bad-{name}")));
        let mut r = read_report(&bad);
        alter(&mut r);
        r.write(&bad).unwrap();
        let o = merge(&[&s[0], &bad], &dir.path().join(format!("out-{name}")), &["--allow-partial"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected) && err.contains("not of one campaign"), "{name}: {err}");
    }
    // A shard given twice.
    let twice = copy(&s[0], &dir.path().join("twice"));
    let o = merge(&[&s[0], &twice, &s[1]], &dir.path().join("out-twice"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard 0 is given twice"), "{}", text(&o));
    // A single run is no shard.
    let single = copy(&s[0], &dir.path().join("single"));
    stamp(&single, |c| *c = None);
    let o = merge(&[&single], &dir.path().join("out-single"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a shard of a campaign"), "{}", text(&o));
}

#[test]
fn gates_are_evaluated_on_the_merged_report_with_junit_and_exit_1() {
    let (dir, s) = shards();
    let gates = write(
        dir.path(),
        "gates.yaml",
        "gates:\n  - {gate: \"audit.lost == 0\"}\n  - {name: too-fast, gate: \"produce.latency.p99 < 1us\"}\n",
    );
    let out = dir.path().join("gated");
    let o = merge(&[&s[0], &s[1]], &out, &["--gates", gates.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m = read_report(&out);
    assert_eq!(m.gates.len(), 2);
    assert!(!m.gates[1].passed);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("too-fast") && junit.contains("failures=\"1\""), "{junit}");
    // A gate on a metric the scenario does not have is refused before anything is written.
    let bad = write(dir.path(), "bad-gates.yaml", "gates:\n  - {gate: \"consumers.nope.max_lag < 10\"}\n");
    let out = dir.path().join("bad-gated");
    let o = merge(&[&s[0], &s[1]], &out, &["--gates", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out.join("report.json").exists());
}

#[test]
fn a_merged_report_adds_up_the_shards_cost_drivers_and_merge_pricing_judges_cost_gates() {
    let (dir, s) = shards();
    let gates = write(dir.path(), "cost-gates.yaml", "gates:\n  - cost.monthly < 1M\n");
    // A cost gate needs --pricing: refused before anything is written.
    let out = dir.path().join("unpriced");
    let o = merge(&[&s[0], &s[1]], &out, &["--gates", gates.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("gates[0]") && t.contains("--pricing"), "{t}");
    assert!(!out.join("report.json").exists());
    let out = dir.path().join("priced");
    let msk = root().join("pricing/managed-kafka-msk.yaml");
    let o = merge(&[&s[0], &s[1]], &out, &["--gates", gates.to_str().unwrap(), "--pricing", msk.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("cost: managed-kafka-msk: "), "{t}");
    let m = read_report(&out);
    let (a, b) = (read_report(&s[0]), read_report(&s[1]));
    let (da, db) = (a.cost_drivers.unwrap(), b.cost_drivers.unwrap());
    let d = m.cost_drivers.as_ref().expect("the shards' drivers, added up");
    let tx = |d: &fleetstorm::report::schema::CostDrivers| d.produce.wire.unwrap().tx_bytes;
    assert_eq!(tx(d), tx(&da) + tx(&db));
    assert_eq!(d.produce.value_bytes, da.produce.value_bytes + db.produce.value_bytes);
    assert_eq!(d.topics.len(), da.topics.len(), "the same topics, once each");
    let ingress = |d: &fleetstorm::report::schema::CostDrivers| d.topics["merge.t"].ingress_wire_bytes.unwrap();
    assert_eq!(ingress(d), ingress(&da) + ingress(&db));
    assert_eq!(m.cost.len(), 1);
    assert!(m.gates[0].passed, "{:?}", m.gates);
    assert!(out.join("cost.json").exists() && out.join("cost.md").exists());
}

/// A served embedded cluster (`fleetstorm serve-embedded`) that shard processes can share, with
/// `topics` created, stopped when dropped.
struct Served {
    child: std::process::Child,
    bootstrap: String,
}

impl Served {
    fn start(topics: &[&str]) -> Served {
        use std::io::BufRead;
        let mut c = bin();
        c.args(["serve-embedded", "--brokers", "3", "--until-stdin-closes"]);
        for t in topics {
            c.args(["--topic", t]);
        }
        let mut child = c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let bootstrap = line.trim().strip_prefix("bootstrap=").unwrap().to_string();
        Served { child, bootstrap }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 10's end-to-end check on the served embedded cluster: three shard processes of one
/// campaign (the index from JOB_COMPLETION_INDEX, as in an Indexed Job), then `merge`. A fourth
/// campaign, with one shard killed by SIGKILL mid-run, makes `merge` refuse, or with
/// `--allow-partial` mark the report partial: never a silently smaller report.
#[test]
fn three_shard_processes_merge_into_the_whole_plan_and_a_killed_shard_is_never_silently_dropped() {
    let _g = serial();
    let served = Served::start(&["merge.t:6", "fleetstorm.control:1"]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "merge.yaml", SCENARIO);
    let profile =
        write(dir.path(), "p.yaml", &format!("name: served\nkind: kafka\nbootstrap_servers: {}\n", served.bootstrap));
    // Campaign c1 carries a cost gate: no shard judges it (or needs pricing for it); the merge
    // prices the campaign and judges it on the whole.
    let gates = write(dir.path(), "gates.yaml", "gates:\n  - audit.lost == 0\n  - cost.monthly < 1M\n");
    let shard = |campaign: &str, i: u32| {
        let gated: &[&std::ffi::OsStr] = if campaign == "c1" { &["--gates".as_ref(), gates.as_os_str()] } else { &[] };
        bin()
            .arg("run")
            .arg(&scenario)
            .args(gated)
            .arg("--profile")
            .arg(&profile)
            .args(["--shards", "3", "--start-timeout", "60s", "-q"])
            .arg("--out")
            .arg(dir.path().join(campaign).join(format!("shard-{i}")))
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("FLEETSTORM_CAMPAIGN", campaign)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let outputs: Vec<_> =
        (0..3).map(|i| shard("c1", i)).collect::<Vec<_>>().into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    let merged = dir.path().join("c1-merged");
    // The campaign's directory holds the shards as subdirectories: merge finds them.
    let o = bin()
        .arg("merge")
        .arg(dir.path().join("c1"))
        .arg("--out")
        .arg(&merged)
        .arg("--pricing")
        .arg(root().join("pricing/managed-kafka-msk.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_report(&merged);
    let shards: Vec<Report> = (0..3).map(|i| read_report(&dir.path().join("c1").join(format!("shard-{i}")))).collect();
    for s in &shards {
        assert_eq!(s.gates.iter().map(|g| g.gate.as_str()).collect::<Vec<_>>(), ["audit.lost == 0"]);
        assert!(
            s.warnings.iter().any(|w| w.contains("`cost.monthly < 1M` is not judged on a shard")),
            "{:?}",
            s.warnings
        );
    }
    let cost_gate = r.gates.iter().find(|g| g.gate == "cost.monthly < 1M").expect("the merge judges the cost gate");
    assert!(cost_gate.passed && cost_gate.value.starts_with("managed-kafka-msk (USD): "), "{cost_gate:?}");
    let tx = |r: &Report| r.cost_drivers.as_ref().and_then(|d| d.produce.wire).map_or(0, |w| w.tx_bytes);
    assert_eq!(tx(&r), shards.iter().map(tx).sum::<u64>(), "the campaign's wire bytes are the shards'");
    assert!(tx(&r) > 0);
    let plan = bin().arg("plan").arg(&scenario).arg("--json").output().unwrap();
    let whole: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(r.produce.planned, whole["total"].as_u64().unwrap(), "the merged plan is the unsharded plan");
    assert_eq!(r.produce.acked, shards.iter().map(|s| s.produce.acked).sum::<u64>());
    assert_eq!(r.produce.acked, r.produce.planned, "everything acknowledged");
    assert_eq!((r.audit.counts.lost, r.audit.counts.duplicates), (0, 0), "{:?}", r.audit);
    assert_eq!(r.audit.counts.acked, r.produce.acked);
    assert!(r.audit.complete);
    assert_eq!(r.consumers["sink"].consumed, r.produce.acked, "one group over three machines read everything once");
    assert_eq!(r.merged.as_ref().unwrap().merged, vec![0, 1, 2]);

    // Campaign c2: shard 2 is killed once the load runs; the others finish.
    let mut c2: Vec<_> = (0..3).map(|i| shard("c2", i)).collect();
    let started = std::time::Instant::now();
    while !dir.path().join("c2/shard-0/produce-latency.hlog").exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "shard 0 never started its load");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    c2[2].kill().unwrap();
    let killed = c2.pop().unwrap().wait_with_output().unwrap();
    assert_eq!(killed.status.code(), None, "SIGKILL");
    for c in c2 {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let inputs = [dir.path().join("c2/shard-0"), dir.path().join("c2/shard-1"), dir.path().join("c2/shard-2")];
    let o = bin().arg("merge").args(&inputs).arg("--out").arg(dir.path().join("c2-merged")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let why = text(&o);
    assert!(why.contains("shard-2") || why.contains("shard(s) 2 of 3 missing"), "the refusal names the shard: {why}");
    let partial = dir.path().join("c2-partial");
    let o = bin().arg("merge").args(&inputs[..2]).arg("--out").arg(&partial).arg("--allow-partial").output().unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let p = read_report(&partial);
    assert_eq!(p.merged.as_ref().unwrap().missing, vec![2]);
    assert!(p.warnings.iter().any(|w| w.starts_with("PARTIAL")), "{:?}", p.warnings);
}
