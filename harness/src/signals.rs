//! Ctrl-C and SIGTERM, counted. The first asks the run to stop the load, drain briefly and write
//! its report (status `aborted`); the second skips the drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Shared count of interrupts received.
#[derive(Clone, Debug, Default)]
pub struct Interrupts {
    count: Arc<AtomicU32>,
}

impl Interrupts {
    /// Listen for SIGINT and SIGTERM on a background thread (a small tokio runtime).
    pub fn install() -> Interrupts {
        let me = Interrupts::default();
        let count = me.count.clone();
        let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                loop {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => if r.is_err() { return },
                        _ = term.recv() => {}
                    }
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == 1 {
                        eprintln!("fleetstorm: interrupted: stopping the load and writing the report (again to skip the drain)");
                    }
                }
            });
        });
        if let Err(e) = spawned {
            tracing::warn!("signal handling unavailable: {e}");
        }
        me
    }

    pub fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    /// Simulate an interrupt (tests).
    pub fn raise(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}
