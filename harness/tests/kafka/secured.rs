//! Secured listeners of the real cluster (`scripts/kafka-cluster.sh start --security all`, its
//! variables from `scripts/kafka-cluster.sh env`): runs over SASL_SSL/SCRAM, mTLS and
//! OAUTHBEARER with a clean audit, and every refusal (wrong password, untrusted CA, untrusted
//! client certificate, a missing WRITE ACL) named in one line by `check` and `run`, exit 3,
//! within the connect timeout, with no secret in any output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::common::*;
use super::unique;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the cluster with --security all and eval \"$(scripts/kafka-cluster.sh env)\" (scripts/test.sh does)")
    })
}

fn shipped(name: &str) -> PathBuf {
    root().join("profiles").join(name)
}

/// A short scenario on fresh topics (acks all, idempotent: what a readiness gate runs).
fn scenario(dir: &Path, name: &str) -> PathBuf {
    write(dir, "s.yaml", &small_scenario(name, 400, "4s").replace("replication: 1", "replication: 3"))
}

/// Every file under `dir`, read as text where it is text.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for e in walk(dir) {
        if let Ok(t) = std::fs::read_to_string(&e) {
            out.push_str(&t);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_quickstart_shape_runs_over_sasl_ssl_mtls_and_oauthbearer_with_a_clean_audit() {
    let password = env("FLEETSTORM_KAFKA_SASL_PASSWORD");
    for profile in ["local-kafka-sasl-ssl.yaml", "local-kafka-mtls.yaml", "local-kafka-oauthbearer.yaml"] {
        let dir = tempfile::tempdir().unwrap();
        let name = unique("sec");
        let out = dir.path().join("out");
        // librdkafka's own unsecured JWT, with a 5 s lifetime: its renewals (which rust-rdkafka
        // would drop) are made by fleetstorm during the run.
        let oauth = profile.contains("oauthbearer");
        let path = if oauth {
            let shipped = std::fs::read_to_string(shipped(profile)).unwrap();
            let short = shipped.replace("principal=fleet", "principal=fleet lifeSeconds=5");
            assert_ne!(short, shipped, "the profile's sasl.oauthbearer.config changed");
            // Its relative paths (fault commands) resolved from where the copy lives.
            let root = root().display().to_string();
            let short =
                short.replace("../.kafka", &format!("{root}/.kafka")).replace("../scripts", &format!("{root}/scripts"));
            write(dir.path(), profile, &short)
        } else {
            shipped(profile)
        };
        let o = bin()
            .args(["run", "--profile"])
            .arg(&path)
            .arg(scenario(dir.path(), &name))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let all = text(&o);
        assert_eq!(o.status.code(), Some(0), "{profile}: {all}");
        let r = read_report(&out);
        assert!(r.audit.counts.acked > 500, "{profile}: acked {}", r.audit.counts.acked);
        assert_eq!((r.audit.counts.lost, r.audit.counts.duplicates), (0, 0), "{profile}: {all}");
        assert_eq!(r.audit.counts.seen, r.audit.counts.acked, "{profile}");
        assert!(!all.contains(&password) && !all_text(&out).contains(&password), "{profile}: the password leaked");
        if oauth {
            let t = r.target.oauthbearer.expect("the report tallies the tokens");
            assert_eq!(t.provider, fleetstorm::report::schema::TokenProvider::Librdkafka, "{t}");
            assert!(t.latest_after_s > 4.0 && t.failed == 0, "no renewal during the run: {t}");
        } else {
            assert!(r.target.oauthbearer.is_none());
        }
    }
}

/// A directory like the cluster's security directory, with some files swapped.
fn security_dir(dir: &Path, swap: &[(&str, &str)]) -> PathBuf {
    let real = PathBuf::from(env("FLEETSTORM_KAFKA_SECURITY_DIR"));
    let fake = dir.join("security");
    std::fs::create_dir_all(&fake).unwrap();
    for f in ["ca.crt", "client-fleet.crt", "client-fleet.key"] {
        let from = swap.iter().find(|(to, _)| *to == f).map_or(f, |(_, from)| *from);
        std::fs::copy(real.join(from), fake.join(f)).unwrap();
    }
    fake
}

struct Refusal {
    what: &'static str,
    profile: &'static str,
    env: Vec<(&'static str, String)>,
    says: &'static str,
}

#[test]
fn refusals_exit_3_within_the_connect_timeout_naming_the_cause_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = env("FLEETSTORM_KAFKA_SASL_PASSWORD");
    let limited = env("FLEETSTORM_KAFKA_LIMITED_PASSWORD");
    let wrong = format!("wrong-{}", unique("pw"));
    let cases = [
        Refusal {
            what: "wrong password",
            profile: "local-kafka-sasl-ssl.yaml",
            env: vec![("FLEETSTORM_KAFKA_SASL_PASSWORD", wrong.clone())],
            says: "SASL: authentication failed for user fleet (SCRAM-SHA-512)",
        },
        Refusal {
            what: "untrusted CA",
            profile: "local-kafka-sasl-ssl.yaml",
            env: vec![(
                "FLEETSTORM_KAFKA_SECURITY_DIR",
                security_dir(&dir.path().join("ca"), &[("ca.crt", "rogue-ca.crt")]).display().to_string(),
            )],
            says: "TLS: the brokers' certificate is signed by an unknown CA",
        },
        Refusal {
            what: "client certificate the brokers do not trust",
            profile: "local-kafka-mtls.yaml",
            env: vec![(
                "FLEETSTORM_KAFKA_SECURITY_DIR",
                security_dir(
                    &dir.path().join("rogue"),
                    &[("client-fleet.crt", "client-rogue.crt"), ("client-fleet.key", "client-rogue.key")],
                )
                .display()
                .to_string(),
            )],
            says: "TLS: the brokers do not trust the CA that signed our client certificate",
        },
        Refusal {
            what: "no WRITE ACL",
            profile: "local-kafka-sasl-ssl.yaml",
            env: vec![
                ("FLEETSTORM_KAFKA_SASL_USERNAME", "limited".into()),
                ("FLEETSTORM_KAFKA_SASL_PASSWORD", limited.clone()),
            ],
            says: "principal User:limited may not WRITE topic ",
        },
    ];
    // The shipped profiles' connect timeout.
    let timeout = Duration::from_secs(15);
    for case in &cases {
        let name = unique("refused");
        let s = scenario(dir.path(), &name);
        if case.what == "no WRITE ACL" {
            // User:limited may not create topics either: they exist, made by a super user.
            create_topics(&[format!("{name}.tel"), format!("{name}.hb")]);
        }
        for cmd in ["check", "run"] {
            let out = dir.path().join(format!("{cmd}-{name}"));
            let mut c = bin();
            c.arg(cmd);
            if cmd == "run" {
                c.arg(&s).arg("--profile").arg(shipped(case.profile)).arg("--out").arg(&out);
            } else {
                c.arg("--profile").arg(shipped(case.profile)).arg(&s).arg("--out").arg(&out);
            }
            for (k, v) in &case.env {
                c.env(k, v);
            }
            let t0 = Instant::now();
            let o = c.output().unwrap();
            let took = t0.elapsed();
            let all = text(&o);
            assert_eq!(o.status.code(), Some(3), "{} ({cmd}): {all}", case.what);
            assert!(all.contains(case.says), "{} ({cmd}) should say `{}`: {all}", case.what, case.says);
            assert!(took < timeout, "{} ({cmd}) took {took:?}, over the connect timeout", case.what);
            for secret in [&password, &limited, &wrong] {
                assert!(!all.contains(secret.as_str()), "{} ({cmd}): a secret reached the output", case.what);
                assert!(!all_text(&out).contains(secret.as_str()), "{} ({cmd}): a secret reached a file", case.what);
            }
        }
    }
}

/// Create topics through the PLAINTEXT listener (its principal is a super user).
fn create_topics(names: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", super::bootstrap()).create().unwrap();
    let topics: Vec<NewTopic<'_>> = names.iter().map(|n| NewTopic::new(n, 3, TopicReplication::Fixed(3))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for r in rt.block_on(admin.create_topics(topics.iter(), &AdminOptions::new())).unwrap() {
        r.unwrap();
    }
}
