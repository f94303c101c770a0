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
    counts: Counts,
}

/// An interval's histogram: as (value, count) pairs when it has the recorder's bounds (every
/// log fleetstorm writes), else decoded whole.
enum Counts {
    Sparse(Vec<(u64, u64)>),
    Whole(Histogram<u64>),
}

impl Counts {
    fn add_to(&self, into: &mut Hist) {
        match self {
            Counts::Sparse(pairs) => {
                for &(v, n) in pairs {
                    into.h.saturating_record_n(v, n);
                }
            }
            Counts::Whole(h) => add_recorded(into, h),
        }
    }
}

/// HdrHistogram's V2 encodings (`serialization/mod.rs` of the `hdrhistogram` crate).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// The recorder's histograms: 1 µs to an hour, 3 significant digits, so 2048 sub-buckets
/// (`crate::recorder::Hist::template`); half of them, as a power of two.
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;

/// The value of bucket `index` in a histogram with the recorder's bounds (as HdrHistogram's
/// `value_for`, with a unit magnitude of 0 and 1024 half sub-buckets).
fn value_for(index: usize) -> u64 {
    let half = 1usize << SUB_BUCKET_HALF_MAGNITUDE;
    let mut bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (index & (half - 1)) + half;
    if bucket < 0 {
        sub -= half;
        bucket = 0;
    }
    (sub as u64) << bucket
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Decode a compressed V2 histogram with the recorder's bounds straight into its non-zero
/// (value, count) pairs: no histogram allocated, no empty bucket visited. `None` when the
/// encoding is another one (then the `hdrhistogram` crate decodes it).
fn sparse(bytes: &[u8], inflated: &mut Vec<u8>, out: &mut Vec<(u64, u64)>) -> Option<()> {
    use std::io::Read as _;
    if be_u32(bytes, 0)? != V2_COMPRESSED_COOKIE {
        return None;
    }
    let len = be_u32(bytes, 4)? as usize;
    inflated.clear();
    flate2::read::ZlibDecoder::new(bytes.get(8..8 + len)?).read_to_end(inflated).ok()?;
    let h = inflated.as_slice();
    let (digits, low, high) = (be_u32(h, 12)?, be_u64(h, 16)?, be_u64(h, 24)?);
    if be_u32(h, 0)? != V2_COOKIE
        || be_u32(h, 8)? != 0
        || (digits, low, high) != (3, 1, crate::recorder::HIST_MAX_US)
        || f64::from_bits(be_u64(h, 32)?) != 1.0
    {
        return None;
    }
    let payload = h.get(40..40 + be_u32(h, 4)? as usize)?;
    out.clear();
    let (mut index, mut at) = (0usize, 0usize);
    while at < payload.len() {
        // LEB128, 9 bytes at most, the ninth taken whole.
        let mut v = 0u64;
        for i in 0..9 {
            let b = *payload.get(at)?;
            at += 1;
            if i == 8 {
                v |= u64::from(b) << 56;
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        let n = ((v >> 1) as i64) ^ -((v & 1) as i64);
        if n < 0 {
            index = index.checked_add(n.unsigned_abs() as usize)?;
        } else {
            if n > 0 {
                out.push((value_for(index), n as u64));
            }
            index += 1;
        }
    }
    Some(())
}

/// A shard's log, read one interval at a time.
struct Reader {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line_no: usize,
    deserializer: Deserializer,
    decoded: Vec<u8>,
    inflated: Vec<u8>,
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
            inflated: Vec::new(),
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
            let mut pairs = Vec::new();
            let counts = match sparse(&self.decoded, &mut self.inflated, &mut pairs) {
                Some(()) => Counts::Sparse(pairs),
                None => Counts::Whole(
                    self.deserializer
                        .deserialize(&mut self.decoded.as_slice())
                        .map_err(|e| self.bad(format!("histogram cannot be decoded: {e:?}")))?,
                ),
            };
            self.peeked = Some(Interval { second: start.round() as u32, tag: tag.to_string(), counts });
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
    // This second's merged histograms, by tag: the first shard's interval, the others added.
    let mut current: BTreeMap<String, Hist> = BTreeMap::new();
    let mut all = template.empty_like();
    while let Some(second) = readers.iter().filter_map(|r| r.peeked.as_ref().map(|i| i.second)).min() {
        current.clear();
        for r in &mut readers {
            while let Some(i) = r.peeked.take_if(|i| i.second == second) {
                family.intervals_in += 1;
                match (current.get_mut(&i.tag), i.counts) {
                    (Some(slot), counts) => counts.add_to(slot),
                    (None, Counts::Whole(h)) => {
                        current.insert(i.tag, Hist { h, clamped: 0 });
                    }
                    (None, counts) => {
                        let mut slot = template.empty_like();
                        counts.add_to(&mut slot);
                        current.insert(i.tag, slot);
                    }
                }
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
            add_recorded(&mut all, &h.h);
            point.tags.insert(tag.clone(), h.window());
            if let (Some(w), Some(o)) = (&mut writer, out)
                && let Some(line) = interval_line(&mut serializer, second, h, (!tag.is_empty()).then_some(tag.as_str()))
            {
                w.write_all(&line).map_err(|e| write_err(o.path, e))?;
            }
            if measured {
                add_recorded(family.totals.entry(tag.clone()).or_insert_with(|| template.empty_like()), &h.h);
            }
        }
        if measured {
            add_recorded(&mut family.all, &all.h);
        }
        point.all = all.window();
        family.seconds.insert(second, point);
    }
    if let (Some(mut w), Some(o)) = (writer, out) {
        w.flush().map_err(|e| write_err(o.path, e))?;
    }
    Ok(family)
}

/// Add `from`'s recorded values into `into`, visiting only `from`'s buckets up to its largest
/// value (`Histogram::add` visits every bucket up to an hour: most of a merge's time, for
/// latencies of milliseconds). Both have the recorder's bounds, so each value lands in the same
/// bucket it came from: the counts, and so every percentile, are those `add` gives.
fn add_recorded(into: &mut Hist, from: &Histogram<u64>) {
    for v in from.iter_recorded() {
        into.h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path decodes fleetstorm's own intervals (it is not silently skipped for the
    /// crate's decoder): the pairs are the histogram's recorded buckets.
    #[test]
    fn the_recorders_intervals_decode_sparsely_to_their_recorded_buckets() {
        let mut h = Hist::template().unwrap();
        for v in [1, 2, 1_000, 2_047, 2_048, 2_049, 12_345, 12_345, 987_654, crate::recorder::HIST_MAX_US] {
            h.record(v);
        }
        let mut ser = V2DeflateSerializer::new();
        let line = String::from_utf8(interval_line(&mut ser, 3, &h, Some("t")).unwrap()).unwrap();
        let encoded = line.trim().rsplit(',').next().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let (mut inflated, mut pairs) = (Vec::new(), Vec::new());
        assert_eq!(sparse(&bytes, &mut inflated, &mut pairs), Some(()));
        let expected: Vec<(u64, u64)> =
            h.h.iter_recorded().map(|v| (h.h.lowest_equivalent(v.value_iterated_to()), v.count_at_value())).collect();
        assert_eq!(pairs, expected);
        // Another encoding is left to the crate's decoder.
        assert_eq!(sparse(b"not a histogram", &mut inflated, &mut pairs), None);
    }
}
