//! fleetstorm: workload-shaped load, faults and a delivery audit for Kafka-compatible targets.
//!
//! Data flows one way: scenario + profile ([`config`]) -> plan ([`plan`]) -> drivers ([`driver`])
//! -> recorder ([`recorder`]) -> report ([`report`]). See ARCHITECTURE.md.

pub mod clock;
pub mod config;
pub mod plan;
pub mod wire;
