//! The JSON schemas in docs/ are generated from the types: this test fails when they drift.
//! Regenerate with `FLEETSTORM_BLESS=1 cargo test --test it schema`.

use crate::common;

fn check(file: &str, schema: serde_json::Value) {
    let path = common::root().join("docs").join(file);
    let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("FLEETSTORM_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "{} is out of date: run `FLEETSTORM_BLESS=1 cargo test --test it schema`", path.display());
}

#[test]
fn report_schema_is_current() {
    check("report.schema.json", fleetstorm::report::schema());
}

#[test]
fn scenario_schema_is_current() {
    check("scenario.schema.json", serde_json::to_value(schemars::schema_for!(fleetstorm::config::Scenario)).unwrap());
}

#[test]
fn profile_schema_is_current() {
    check("profile.schema.json", serde_json::to_value(schemars::schema_for!(fleetstorm::config::Profile)).unwrap());
}
