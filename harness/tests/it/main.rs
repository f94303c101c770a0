//! The integration tests, one binary of modules (as ripgrep keeps them): the binary's contract,
//! the embedded-cluster runs, reports, secrets, output directories. One binary means one process,
//! so `common::serial()` really serializes the load tests that share the machine's two cores.
//! The real-Kafka tier is its own binary (`tests/kafka.rs`, feature `kafka-tests`).

#[path = "../common/mod.rs"]
mod common;

mod backbone;
mod bench;
mod cli;
mod compat;
mod compose;
mod cost;
mod embedded;
mod fuzz;
mod html;
mod idempotence;
mod live;
mod merge;
mod output;
mod partitions;
mod reports;
mod restore;
mod scenarios;
mod schema;
mod secrets;
mod shapes;
mod store;
mod structure;
