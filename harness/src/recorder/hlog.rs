//! HdrHistogram interval logs (`.hlog`, the format HdrHistogram's own tools read), one file per
//! histogram family, one interval per second, tagged by payload class or consumer group. Values
//! are microseconds. They let a run be re-analysed elsewhere (HistogramLogAnalyzer,
//! HdrHistogram's log processor, or the `hdrhistogram` crate's interval-log reader).
//!
//! - `produce-latency.hlog`: acknowledgement latency from the intended send time, per class;
//! - `produce-latency-from-send.hlog`: from the actual send time, per class;
//! - `send-lag.hlog`: actual minus intended send time;
//! - `e2e-latency.hlog` and `event-age.hlog`: per consumer group.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::{ConsumerWindow, Hist, ProducerWindow};

#[derive(Clone, Debug)]
pub struct HlogConfig {
    pub dir: PathBuf,
    pub classes: Vec<String>,
}

pub const FILES: [&str; 5] =
    ["produce-latency.hlog", "produce-latency-from-send.hlog", "send-lag.hlog", "e2e-latency.hlog", "event-age.hlog"];

/// The open logs of a run.
pub struct Hlogs {
    cfg: HlogConfig,
    files: Vec<Option<BufWriter<File>>>,
    serializer: V2DeflateSerializer,
    failed: bool,
}

impl Hlogs {
    pub fn new(cfg: HlogConfig) -> Hlogs {
        Hlogs {
            cfg,
            files: FILES.iter().map(|_| None).collect(),
            serializer: V2DeflateSerializer::new(),
            failed: false,
        }
    }

    fn file(&mut self, i: usize, origin_unix_us: u64) -> Option<&mut BufWriter<File>> {
        if self.files[i].is_none() && !self.failed {
            let path = self.cfg.dir.join(FILES[i]);
            match File::create(&path) {
                Ok(f) => {
                    let mut w = BufWriter::new(f);
                    if begin_log(&mut w, FILES[i], origin_unix_us, &mut self.serializer).is_err() {
                        self.failed = true;
                        tracing::warn!("cannot write {}", path.display());
                        return None;
                    }
                    self.files[i] = Some(w);
                }
                Err(e) => {
                    tracing::warn!("cannot create {}: {e}", path.display());
                    self.failed = true;
                }
            }
        }
        self.files[i].as_mut()
    }

    fn interval(&mut self, i: usize, origin_unix_us: u64, second: u32, h: &Hist, tag: Option<&str>) {
        let Some(buf) = interval_line(&mut self.serializer, second, h, tag) else { return };
        if let Some(f) = self.file(i, origin_unix_us)
            && f.write_all(&buf).is_err()
        {
            self.failed = true;
        }
    }

    /// Write one second's intervals.
    pub fn write(
        &mut self,
        second: u32,
        origin_unix_us: u64,
        producer: Option<&ProducerWindow>,
        consumers: &[Option<ConsumerWindow>],
        groups: &[String],
    ) {
        if let Some(p) = producer {
            for (ci, c) in p.classes.iter().enumerate() {
                let tag = self.cfg.classes.get(ci).cloned();
                self.interval(0, origin_unix_us, second, &c.from_intended, tag.as_deref());
                self.interval(1, origin_unix_us, second, &c.from_send, tag.as_deref());
            }
            self.interval(2, origin_unix_us, second, &p.send_lag, None);
        }
        for (g, w) in consumers.iter().enumerate() {
            if let Some(w) = w {
                let tag = groups.get(g).cloned();
                self.interval(3, origin_unix_us, second, &w.e2e, tag.as_deref());
                self.interval(4, origin_unix_us, second, &w.age, tag.as_deref());
            }
        }
    }
}

impl Drop for Hlogs {
    fn drop(&mut self) {
        for f in self.files.iter_mut().flatten() {
            let _ = f.flush();
        }
    }
}

/// The unix time of `t` in whole microseconds (for tests and readers).
pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Begin the interval log `name` (one of [`FILES`]): the header HdrHistogram's tools read, with
/// start and base time at `origin_unix_us` (second 0 of the run's timeline).
pub fn begin_log(
    w: &mut impl Write,
    name: &str,
    origin_unix_us: u64,
    serializer: &mut V2DeflateSerializer,
) -> std::io::Result<()> {
    let start = UNIX_EPOCH + Duration::from_micros(origin_unix_us);
    IntervalLogWriterBuilder::new()
        .add_comment(&format!("fleetstorm {}: {name} (microseconds)", env!("CARGO_PKG_VERSION")))
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut *w, serializer)
        .map(|_| ())?;
    writeln!(w, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")
}

/// One interval's line: second `second` of the timeline, one second long, tagged; `None` for an
/// empty histogram (never written) or one that cannot be encoded.
pub fn interval_line(
    serializer: &mut V2DeflateSerializer,
    second: u32,
    h: &Hist,
    tag: Option<&str>,
) -> Option<Vec<u8>> {
    if h.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let mut w = IntervalLogWriterBuilder::new().begin_log_with(&mut buf, serializer).ok()?;
    let start = Duration::from_secs(u64::from(second));
    w.write_histogram(&h.h, start, Duration::from_secs(1), tag.and_then(Tag::new)).ok()?;
    Some(buf)
}
