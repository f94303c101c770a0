//! The record value formats, and the audit fields every record carries.
//!
//! Both formats carry: the run id, the device (number and, in JSON, its id), the payload class,
//! the per-device sequence number of that class, the event's creation time and the time it was
//! intended to be sent (unix microseconds, derived from the harness's monotonic clock: see
//! ARCHITECTURE.md). Consumers use them for end-to-end latency; the audit for lost, duplicated
//! and reordered records.
//!
//! JSON (`format: json`), keys always in this order so a reader can decode without a JSON parser:
//! `{"fs":1,"run":"<16 hex>","dev":"<device id>","di":<n>,"cls":<n>,"fw":<n>,"seq":<n>,"ct":<us>,"it":<us>,"pad":"<filler>"}`
//!
//! Binary (`format: binary`), little-endian, then filler bytes:
//! `"FS" | version u8 = 1 | 0u8 | run u64 | device u32 | class u16 | firmware u16 | seq u64 |
//! created_us u64 | intended_us u64 | 0u32` (48 bytes).

use std::io::Write;

pub use crate::config::envelope::{BINARY_HEADER, min_value_size};
use crate::config::scenario::ValueFormat;

/// What the audit and the latency recorders read from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub run: u64,
    pub device: u32,
    pub class: u16,
    pub firmware: u16,
    pub seq: u64,
    /// When the device created the event, unix microseconds.
    pub created_us: u64,
    /// When the schedule intended it to be sent, unix microseconds.
    pub intended_us: u64,
}

/// Random filler shared by all encoders: incompressible bytes, and their JSON-safe rendering.
pub struct Filler {
    bytes: Vec<u8>,
    text: Vec<u8>,
}

const FILLER_LEN: usize = 1 << 20;
const TEXT_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Filler {
    pub fn new(seed: u64) -> Self {
        let mut rng = crate::plan::rng::SplitMix::new(seed ^ 0x00F1_11E5);
        let mut bytes = vec![0u8; FILLER_LEN];
        for chunk in bytes.chunks_mut(8) {
            let v = rng.step().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let text = bytes.iter().map(|b| TEXT_ALPHABET[(b & 63) as usize]).collect();
        Filler { bytes, text }
    }

    /// `len` bytes of `source` from `*cursor` on, wrapping around; advances the cursor.
    fn slice<'a>(source: &'a [u8], cursor: &mut usize, len: usize) -> impl Iterator<Item = &'a [u8]> {
        let start = *cursor % source.len();
        *cursor = (start + len) % source.len();
        let mut remaining = len;
        let mut pos = start;
        std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            let take = remaining.min(source.len() - pos);
            let s = &source[pos..pos + take];
            remaining -= take;
            pos = 0;
            Some(s)
        })
    }
}

/// Write a record value of `size` bytes (or the format's minimum, if larger) into `out`.
///
/// `cursor` is where in the filler this encoder's padding continues: consecutive records take
/// consecutive filler bytes, so a batch of records does not repeat itself for a whole megabyte
/// (compression sees realistic entropy) and the copy streams through memory instead of missing
/// the cache on every record.
pub fn encode(
    format: ValueFormat,
    stamp: &Stamp,
    device_id: &[u8],
    size: usize,
    filler: &Filler,
    cursor: &mut usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    match format {
        ValueFormat::Binary => {
            // The header is built in a fixed array and appended once: one capacity check and
            // one copy, not one per field (callgrind: this function's own instructions per
            // record 176 → 93, BENCHMARKS.md).
            let mut h = [0u8; BINARY_HEADER];
            h[..4].copy_from_slice(b"FS\x01\x00");
            h[4..12].copy_from_slice(&stamp.run.to_le_bytes());
            h[12..16].copy_from_slice(&stamp.device.to_le_bytes());
            h[16..18].copy_from_slice(&stamp.class.to_le_bytes());
            h[18..20].copy_from_slice(&stamp.firmware.to_le_bytes());
            h[20..28].copy_from_slice(&stamp.seq.to_le_bytes());
            h[28..36].copy_from_slice(&stamp.created_us.to_le_bytes());
            h[36..44].copy_from_slice(&stamp.intended_us.to_le_bytes());
            out.extend_from_slice(&h);
            let pad = size.saturating_sub(out.len());
            for s in Filler::slice(&filler.bytes, cursor, pad) {
                out.extend_from_slice(s);
            }
        }
        ValueFormat::Json => {
            // Writing into a Vec cannot fail.
            let _ = write!(out, r#"{{"fs":1,"run":"{:016x}","dev":""#, stamp.run);
            out.extend_from_slice(device_id);
            let _ = write!(
                out,
                r#"","di":{},"cls":{},"fw":{},"seq":{},"ct":{},"it":{},"pad":""#,
                stamp.device, stamp.class, stamp.firmware, stamp.seq, stamp.created_us, stamp.intended_us
            );
            let pad = size.saturating_sub(out.len() + 2);
            for s in Filler::slice(&filler.text, cursor, pad) {
                out.extend_from_slice(s);
            }
            out.extend_from_slice(b"\"}");
        }
    }
}

/// Read the audit fields back from a record value; `None` when the value is not one of ours.
pub fn decode(value: &[u8]) -> Option<Stamp> {
    if value.len() >= BINARY_HEADER && value.starts_with(b"FS\x01") {
        let u64_at = |i: usize| value.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let u32_at = |i: usize| value.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let u16_at = |i: usize| value.get(i..i + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes);
        return Some(Stamp {
            run: u64_at(4)?,
            device: u32_at(12)?,
            class: u16_at(16)?,
            firmware: u16_at(18)?,
            seq: u64_at(20)?,
            created_us: u64_at(28)?,
            intended_us: u64_at(36)?,
        });
    }
    decode_json(value)
}

fn decode_json(value: &[u8]) -> Option<Stamp> {
    let mut c = Cursor { b: value, i: 0 };
    c.lit(br#"{"fs":1,"run":""#)?;
    let run_hex = c.take(16)?;
    let run = u64::from_str_radix(std::str::from_utf8(run_hex).ok()?, 16).ok()?;
    c.lit(br#"","dev":""#)?;
    c.skip_until(b'"')?;
    c.lit(br#"","di":"#)?;
    let device = u32::try_from(c.num()?).ok()?;
    c.lit(br#","cls":"#)?;
    let class = u16::try_from(c.num()?).ok()?;
    c.lit(br#","fw":"#)?;
    let firmware = u16::try_from(c.num()?).ok()?;
    c.lit(br#","seq":"#)?;
    let seq = c.num()?;
    c.lit(br#","ct":"#)?;
    let created_us = c.num()?;
    c.lit(br#","it":"#)?;
    let intended_us = c.num()?;
    Some(Stamp { run, device, class, firmware, seq, created_us, intended_us })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i + n)?;
        self.i += n;
        Some(s)
    }

    fn skip_until(&mut self, byte: u8) -> Option<()> {
        let off = self.b.get(self.i..)?.iter().position(|&c| c == byte)?;
        self.i += off;
        Some(())
    }

    fn num(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        (self.i > start).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            run: 0xDEAD_BEEF_0123_4567,
            device: 4242,
            class: 3,
            firmware: 2,
            seq: 77,
            created_us: 1_764_000_000_000_000,
            intended_us: 1_764_000_000_123_456,
        }
    }

    #[test]
    fn json_round_trips_at_exact_size_and_is_valid_json() {
        let f = Filler::new(1);
        let mut out = Vec::new();
        encode(ValueFormat::Json, &stamp(), b"device-004242", 700, &f, &mut 0, &mut out);
        assert_eq!(out.len(), 700);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["dev"], "device-004242");
        assert_eq!(v["seq"], 77);
        assert_eq!(decode(&out), Some(stamp()));
    }

    #[test]
    fn binary_round_trips_at_exact_size() {
        let f = Filler::new(1);
        let mut out = Vec::new();
        encode(ValueFormat::Binary, &stamp(), b"ignored", 4096, &f, &mut 0, &mut out);
        assert_eq!(out.len(), 4096);
        assert_eq!(decode(&out), Some(stamp()));
    }

    #[test]
    fn the_binary_header_is_the_documented_layout() {
        // Other readers (the Python checks, users' consumers) decode these bytes: pinned here.
        let mut out = Vec::new();
        let s = Stamp { run: 1, device: 2, class: 3, firmware: 4, seq: 5, created_us: 6, intended_us: 7 };
        encode(ValueFormat::Binary, &s, b"", 0, &Filler::new(1), &mut 0, &mut out);
        let mut want = b"FS\x01\x00".to_vec();
        want.extend(1u64.to_le_bytes());
        want.extend(2u32.to_le_bytes());
        want.extend(3u16.to_le_bytes());
        want.extend(4u16.to_le_bytes());
        for v in [5u64, 6, 7] {
            want.extend(v.to_le_bytes());
        }
        want.extend(0u32.to_le_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn undersized_requests_get_the_minimum() {
        let f = Filler::new(1);
        let mut out = Vec::new();
        encode(ValueFormat::Binary, &stamp(), b"", 10, &f, &mut 0, &mut out);
        assert_eq!(out.len(), BINARY_HEADER);
        encode(ValueFormat::Json, &stamp(), b"device-004242", 10, &f, &mut 0, &mut out);
        assert!(out.len() <= min_value_size(ValueFormat::Json, 13));
        assert_eq!(decode(&out), Some(stamp()));
    }

    #[test]
    fn the_size_rule_in_config_is_the_encoders_smallest_value() {
        // Validation checks sizes with `config::envelope` alone: it must agree with the encoder.
        let widest = Stamp {
            run: u64::MAX,
            device: u32::MAX,
            class: u16::MAX,
            firmware: u16::MAX,
            seq: 9_999_999_999,
            created_us: 9_999_999_999_999_999,
            intended_us: 9_999_999_999_999_999,
        };
        let f = Filler::new(1);
        let mut out = Vec::new();
        for id in ["", "d-1", "bldg-sensor-09999"] {
            encode(ValueFormat::Json, &widest, id.as_bytes(), 0, &f, &mut 0, &mut out);
            assert_eq!(out.len(), min_value_size(ValueFormat::Json, id.len()), "{id}");
        }
        encode(ValueFormat::Binary, &widest, b"", 0, &f, &mut 0, &mut out);
        assert_eq!(out.len(), min_value_size(ValueFormat::Binary, 0));
    }

    #[test]
    fn foreign_values_are_not_decoded() {
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(br#"{"fs":1,"run":"zz"}"#), None);
        assert_eq!(decode(b""), None);
    }

    #[test]
    fn consecutive_records_continue_the_filler_instead_of_repeating_it() {
        let f = Filler::new(3);
        let (mut a, mut b, mut cursor) = (Vec::new(), Vec::new(), 0);
        encode(ValueFormat::Binary, &stamp(), b"", 1000, &f, &mut cursor, &mut a);
        assert_eq!(cursor, 1000 - BINARY_HEADER);
        encode(ValueFormat::Binary, &stamp(), b"", 1000, &f, &mut cursor, &mut b);
        assert_ne!(a[BINARY_HEADER..], b[BINARY_HEADER..]);
        assert_eq!(a[BINARY_HEADER..], f.bytes[..1000 - BINARY_HEADER]);
        assert_eq!(b[BINARY_HEADER..], f.bytes[1000 - BINARY_HEADER..2 * (1000 - BINARY_HEADER)]);
        // Wraps around at the end of the filler.
        let mut cursor = FILLER_LEN - 10;
        encode(ValueFormat::Binary, &stamp(), b"", BINARY_HEADER + 30, &f, &mut cursor, &mut a);
        assert_eq!(cursor, 20);
        assert_eq!(a[BINARY_HEADER + 10..], f.bytes[..20]);
    }

    #[test]
    fn filler_is_incompressible_enough() {
        // A sanity check that payloads are not all zeros: compression ratio matters in bake-offs.
        let f = Filler::new(9);
        let distinct: std::collections::HashSet<u8> = f.bytes[..4096].iter().copied().collect();
        assert!(distinct.len() > 200);
    }
}
