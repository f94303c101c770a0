//! No secret reaches any output, whichever field it ends up in (issue 16). Each case puts a
//! secret where the redactor by key name alone let it through, then reads every byte the run
//! printed or wrote.

use crate::common;

use std::path::Path;

use common::*;

const SECRET: &str = "hunter2-env-s3cr3t";
const LITERAL: &str = "hunter2-lit3ral-pw";

/// Everything a command printed and every file it wrote under `dir`, as text.
fn everything(o: &std::process::Output, dir: &Path) -> String {
    let mut all = text(o);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "png") {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    all
}

#[test]
fn a_secret_from_the_environment_in_a_field_that_fails_validation_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: ${FS_T_NAME_PASSWORD}\nkind: kafka\nbootstrap_servers: [127.0.0.1:9]\nconnect_timeout: ${FS_T_PASSWORD}\n",
    );
    for args in [vec!["validate"], vec!["run", "--profile"]] {
        let mut c = bin();
        c.args(&args).env("FS_T_PASSWORD", SECRET).env("FS_T_NAME_PASSWORD", "n4me-secret-value");
        if args[0] == "run" {
            c.arg(&profile).arg(write(dir.path(), "s.yaml", &small_scenario("sec", 10, "2s")));
        } else {
            c.arg(&profile);
        }
        let o = c.output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains("connect_timeout"), "the field is named: {t}");
        assert!(!t.contains(SECRET) && !t.contains("n4me-secret-value"), "{t}");
    }
}

#[test]
fn a_misspelled_or_invalid_secret_property_is_scrubbed_from_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.yaml", &small_scenario("secrun", 10, "2s"));
    let profile = write(
        dir.path(),
        "p.yaml",
        &format!(
            "name: leaky\nkind: embedded\nlibrdkafka:\n  sasl.passwrod: {LITERAL}\n  security.protocol: ${{FS_T_PASSWORD}}\n"
        ),
    );
    let out = dir.path().join("out");
    let o = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .env("FS_T_PASSWORD", SECRET)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let all = everything(&o, &out);
    assert!(out.join("report.json").is_file() && out.join("report.html").is_file());
    assert!(!all.contains(SECRET), "the environment's secret leaked:\n{all}");
    assert!(!all.contains(LITERAL), "the misspelled property's value leaked:\n{all}");
    assert!(all.contains("[redacted]"));
}

/// Regression: a fault command template with `${KAFKA_PASSWORD}` was stored expanded in the
/// report and logged; an environment value put into a template ran as shell (`x; touch pwned`).
#[test]
fn fault_commands_keep_secrets_out_and_quote_what_the_environment_puts_in() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let scenario = write(
        dir.path(),
        "s.yaml",
        &(small_scenario("seccmd", 10, "4s").replace("drain: 20s", "drain: 3s")
            + "faults:\n  - {name: k, at: 1s, kind: broker_kill, broker: 1, restore_after: 1s}\n"),
    );
    let profile = write(
        dir.path(),
        "p.yaml",
        "name: cmd\nkind: embedded\nfaults:\n  command:\n    broker_kill: \"echo token=${FS_T_PASSWORD} ${FS_PREFIX}-{broker}\"\n    broker_start: \"true\"\n",
    );
    let out = dir.path().join("out");
    let o = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .env("FS_T_PASSWORD", SECRET)
        .env("FS_PREFIX", format!("x; touch {}", pwned.display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!pwned.exists(), "an environment value ran as a shell command");
    let r = read_report(&out);
    let kill = &r.faults[0].actions[0];
    assert!(kill.ok, "{kill:?}");
    assert!(kill.output.contains(&format!("x; touch {}-1", pwned.display())), "printed as one word: {kill:?}");
    assert!(kill.command.as_deref().unwrap_or("").contains("token=[redacted]"), "{kill:?}");
    let all = everything(&o, &out);
    assert!(!all.contains(SECRET), "the secret leaked:\n{all}");
}
