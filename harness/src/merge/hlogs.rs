//! The exact half of a merge: the shards' HdrHistogram interval logs (`.hlog`, one interval per
//! second and class or group, see `recorder/hlog.rs`), merged interval by interval. Every input
//! is read as a stream, in time order, all shards at once (a k-way merge on the second): memory
//! holds one pending interval per shard and one histogram per tag, never a whole log, so 64
//! shards of an hour merge in bounded memory. Each merged interval is written to the merged
//! report's own log, its percentiles go into the timeline, and the intervals after warm-up add
//! up to the totals: percentiles of the sum of the samples, never averages of percentiles.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::MergeError;
use crate::recorder::Hist;
use crate::recorder::hlog::{begin_log, interval_line};
use crate::report::schema::WindowLatency;

/// One family of histograms (one `.hlog` file name), merged over the shards.
#[derive(Debug)]
pub struct Family {
    /// After warm-up, per tag (payload class or consumer group; `""` when untagged).
    pub totals: BTreeMap<String, Hist>,
    /// After warm-up, every tag together.
    pub all: Hist,
    /// Per second of the timeline: every tag together, and per tag.
    pub seconds: BTreeMap<u32, Second>,
    /// Intervals read from the shards.
    pub intervals_in: u64,
}

/// One second of a family.
#[derive(Clone, Debug, Default)]
pub struct Second {
    pub all: WindowLatency,
    pub tags: BTreeMap<String, WindowLatency>,
}

impl Family {
    /// The totals of one tag (an empty summary when the tag never had a sample).
    pub fn tag(&self, tag: &str) -> Option<&Hist> {
        self.totals.get(tag)
    }
}

/// One interval of a shard's log.
struct Interval {
    second: u32,
    tag: String,
    hist: Histogram<u64>,
}

/// A shard's log, read one interval at a time.
struct Reader {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line_no: usize,
    deserializer: Deserializer,
    decoded: Vec<u8>,
    peeked: Option<Interval>,
}

impl Reader {
    fn open(path: &Path) -> Result<Option<Reader>, MergeError> {
        let file = match File::open(path) {
            Ok(f) => f,
            // A shard whose family had no sample (no consumer group, say) wrote no log.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MergeError::Hlog { path: path.to_path_buf(), why: e.to_string() }),
        };
        let mut r = Reader {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(64 * 1024, file).lines(),
            line_no: 0,
            deserializer: Deserializer::new(),
            decoded: Vec::new(),
            peeked: None,
        };
        r.advance()?;
        Ok(Some(r))
    }

    fn bad(&self, why: impl Into<String>) -> MergeError {
        MergeError::Hlog { path: self.path.clone(), why: format!("line {}: {}", self.line_no, why.into()) }
    }

    /// Read the next interval into `peeked` (`None` at the end of the log).
    fn advance(&mut self) -> Result<(), MergeError> {
        self.peeked = None;
        while let Some(line) = self.lines.next() {
            self.line_no += 1;
            let line = line.map_err(|e| MergeError::Hlog { path: self.path.clone(), why: e.to_string() })?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('"') {
                continue;
            }
            let (tag, rest) = match line.strip_prefix("Tag=") {
                Some(t) => t.split_once(',').ok_or_else(|| self.bad("a tag without an interval"))?,
                None => ("", line),
            };
            let mut fields = rest.splitn(4, ',');
            let (Some(start), Some(_length), Some(_max), Some(encoded)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(self.bad("expected StartTimestamp,Interval_Length,Interval_Max,histogram"));
            };
            let start: f64 = start.trim().parse().map_err(|_| self.bad(format!("bad start timestamp `{start}`")))?;
            if !(0.0..=f64::from(u32::MAX)).contains(&start) {
                return Err(self.bad(format!("start timestamp {start} out of range")));
            }
            self.decoded.clear();
            base64::engine::general_purpose::STANDARD
                .decode_vec(encoded.trim(), &mut self.decoded)
                .map_err(|e| self.bad(format!("histogram is not base64: {e}")))?;
            let hist: Histogram<u64> = self
                .deserializer
                .deserialize(&mut self.decoded.as_slice())
                .map_err(|e| self.bad(format!("histogram cannot be decoded: {e:?}")))?;
            self.peeked = Some(Interval { second: start.round() as u32, tag: tag.to_string(), hist });
            return Ok(());
        }
        Ok(())
    }
}

/// Where the merged log goes and where the timeline starts.
pub struct Output<'a> {
    pub path: &'a Path,
    /// Second 0 of the timeline, Unix microseconds (the campaign's agreed start).
    pub origin_unix_us: u64,
}

/// Merge one family of logs (`inputs`: the same file in each shard's directory) interval by
/// interval; write the merged log to `out` when given. Intervals of a second at or after
/// `warmup_us` add up to the totals, as the recorder's totals do.
pub fn merge_family(
    name: &str,
    inputs: &[PathBuf],
    template: &Hist,
    warmup_us: u64,
    out: Option<&Output<'_>>,
) -> Result<Family, MergeError> {
    let mut readers: Vec<Reader> = Vec::new();
    for p in inputs {
        if let Some(r) = Reader::open(p)? {
            readers.push(r);
        }
    }
    let mut family =
        Family { totals: BTreeMap::new(), all: template.empty_like(), seconds: BTreeMap::new(), intervals_in: 0 };
    let mut writer = None;
    let mut serializer = V2DeflateSerializer::new();
    let write_err = |path: &Path, e: std::io::Error| MergeError::Write { path: path.to_path_buf(), cause: e };
    if let Some(o) = out
        && !readers.is_empty()
    {
        let mut w = BufWriter::new(File::create(o.path).map_err(|e| write_err(o.path, e))?);
        begin_log(&mut w, name, o.origin_unix_us, &mut serializer).map_err(|e| write_err(o.path, e))?;
        writer = Some(w);
    }
    // This second's merged histograms, by tag; reused from second to second.
    let mut current: BTreeMap<String, Hist> = BTreeMap::new();
    let mut all = template.empty_like();
    while let Some(second) = readers.iter().filter_map(|r| r.peeked.as_ref().map(|i| i.second)).min() {
        for h in current.values_mut() {
            h.reset();
        }
        for r in &mut readers {
            while let Some(i) = r.peeked.take_if(|i| i.second == second) {
                family.intervals_in += 1;
                let slot = current.entry(i.tag).or_insert_with(|| template.empty_like());
                slot.add(&Hist { h: i.hist, clamped: 0 });
                r.advance()?;
            }
            if r.peeked.as_ref().is_some_and(|i| i.second < second) {
                return Err(r.bad("intervals out of time order"));
            }
        }
        all.reset();
        let measured = u64::from(second) * 1_000_000 >= warmup_us;
        let mut point = Second::default();
        for (tag, h) in current.iter().filter(|(_, h)| !h.is_empty()) {
            all.add(h);
            point.tags.insert(tag.clone(), h.window());
            if let (Some(w), Some(o)) = (&mut writer, out)
                && let Some(line) = interval_line(&mut serializer, second, h, (!tag.is_empty()).then_some(tag.as_str()))
            {
                w.write_all(&line).map_err(|e| write_err(o.path, e))?;
            }
            if measured {
                family.totals.entry(tag.clone()).or_insert_with(|| template.empty_like()).add(h);
            }
        }
        if measured {
            family.all.add(&all);
        }
        point.all = all.window();
        family.seconds.insert(second, point);
    }
    if let (Some(mut w), Some(o)) = (writer, out) {
        w.flush().map_err(|e| write_err(o.path, e))?;
    }
    Ok(family)
}
