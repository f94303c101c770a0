//! Human units in scenario files: durations (`30s`, `2m`, `1.5h`), byte sizes (`64B`, `4KiB`, `1MB`),
//! rates (`500/s`, `1/30s`, `12/h`) and ratios (`30%`, `0.3`).
//!
//! Each unit is a small `Copy` type with a `FromStr` whose error says what was expected, so that a
//! typo in a scenario is reported as "invalid duration `30x`: ..." next to its file, line and field.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time, written with a unit: `250us`, `10ms`, `30s`, `2m`, `1h`, `1.5s`, or parts added
/// up: `2m30s`, `1h 30m`. `0` is allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub const ZERO: Dur = Dur(Duration::ZERO);

    pub fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    pub fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    pub fn as_micros(self) -> u64 {
        u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

fn parse_number(num: &str) -> Option<f64> {
    if num.is_empty() {
        return None;
    }
    let cleaned: String = num.chars().filter(|c| *c != '_').collect();
    let v: f64 = cleaned.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Error for a unit value that did not parse. The message is complete on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

fn duration_unit_secs(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => return None,
    })
}

impl FromStr for Dur {
    type Err = UnitError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        let bad = || {
            UnitError(format!(
                "invalid duration `{raw}`: expected a number with a unit (us, ms, s, m, h, d), e.g. `30s`, `1.5m` or `2m30s`"
            ))
        };
        if s == "0" {
            return Ok(Dur::ZERO);
        }
        // One or more number-unit parts, largest first by habit, added up: `1h30m`, `2m 20s`.
        let mut rest = s;
        let mut secs = 0.0;
        while !rest.is_empty() {
            let (num, after) = split_number(rest);
            let value = parse_number(num).ok_or_else(bad)?;
            let end = after.find(|c: char| c.is_ascii_digit() || c.is_whitespace() || c == '.').unwrap_or(after.len());
            let scale = duration_unit_secs(&after[..end]).ok_or_else(bad)?;
            secs += value * scale;
            rest = after[end..].trim_start();
        }
        if secs > 10.0 * 365.0 * 86400.0 {
            return Err(UnitError(format!("invalid duration `{raw}`: longer than ten years")));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        if us == 0 {
            write!(f, "0s")
        } else if us % 3_600_000_000 == 0 {
            write!(f, "{}h", us / 3_600_000_000)
        } else if us % 60_000_000 == 0 {
            write!(f, "{}m", us / 60_000_000)
        } else if us % 1_000_000 == 0 {
            write!(f, "{}s", us / 1_000_000)
        } else if us % 1000 == 0 {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

/// A number of bytes: `64B`, `512` (bytes), `4KiB`, `1MiB`, `10KB` (SI, 1000), `1.5MiB`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        let bad = || {
            UnitError(format!(
                "invalid size `{raw}`: expected a number of bytes with an optional unit (B, KiB, MiB, GiB, KB, MB, GB), e.g. `4KiB`"
            ))
        };
        let (num, unit) = split_number(s);
        let value = parse_number(num).ok_or_else(bad)?;
        let scale: f64 = match unit {
            "" | "B" | "b" => 1.0,
            "KiB" | "Ki" | "k" | "K" => 1024.0,
            "MiB" | "Mi" => 1024.0 * 1024.0,
            "GiB" | "Gi" => 1024.0 * 1024.0 * 1024.0,
            "KB" | "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            _ => return Err(bad()),
        };
        let bytes = (value * scale).round();
        if bytes > 1e15 {
            return Err(UnitError(format!("invalid size `{raw}`: too large")));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 20 && b % (1 << 20) == 0 {
            write!(f, "{}MiB", b >> 20)
        } else if b >= 1024 && b % 1024 == 0 {
            write!(f, "{}KiB", b >> 10)
        } else {
            write!(f, "{b}B")
        }
    }
}

/// Events per unit of time: `500/s`, `1/30s`, `12/h`, `3/5m`. Stored as events per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Rate {
    per_sec: f64,
}

impl Rate {
    pub fn per_sec(per_sec: f64) -> Self {
        Rate { per_sec }
    }

    pub fn as_per_sec(self) -> f64 {
        self.per_sec
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError(format!("invalid rate `{raw}`: expected COUNT/PERIOD, e.g. `500/s`, `1/30s` or `12/h`"));
        let (count, period) = raw.trim().split_once('/').ok_or_else(bad)?;
        let count = parse_number(count.trim()).ok_or_else(bad)?;
        let period = period.trim();
        let period_secs = match duration_unit_secs(period) {
            Some(unit) => unit,
            None => period.parse::<Dur>().map_err(|_| bad())?.as_secs_f64(),
        };
        if period_secs <= 0.0 {
            return Err(bad());
        }
        Ok(Rate { per_sec: count / period_secs })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_sec >= 1.0 || self.per_sec == 0.0 {
            write!(f, "{}/s", trim_float(self.per_sec))
        } else {
            write!(f, "1/{}", Dur(Duration::from_secs_f64(1.0 / self.per_sec)))
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A fraction: `30%` or `0.3`. Always within 0..=1.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Ratio(pub f64);

impl FromStr for Ratio {
    type Err = UnitError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        let bad = || {
            UnitError(format!(
                "invalid ratio `{raw}`: expected a percentage like `30%` or a fraction between 0 and 1 like `0.3`"
            ))
        };
        let v = if let Some(p) = s.strip_suffix('%') {
            parse_number(p.trim()).ok_or_else(bad)? / 100.0
        } else {
            parse_number(s).ok_or_else(bad)?
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(bad());
        }
        Ok(Ratio(v))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.0 * 100.0))
    }
}

/// Deserialize any unit type from a YAML scalar (string, integer or float text).
struct FromStrVisitor<T>(std::marker::PhantomData<T>, &'static str);

impl<T> Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr<Err = UnitError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|e: UnitError| E::custom(e.0))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

macro_rules! unit_serde {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(FromStrVisitor(std::marker::PhantomData, $what))
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $what })
            }
        }
    };
}

unit_serde!(Dur, "a duration such as `30s`");
unit_serde!(ByteSize, "a size such as `4KiB`");
unit_serde!(Rate, "a rate such as `500/s` or `1/30s`");
unit_serde!(Ratio, "a ratio such as `30%` or `0.3`");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!("30s".parse::<Dur>().unwrap(), Dur::from_secs(30));
        assert_eq!("2m".parse::<Dur>().unwrap(), Dur::from_secs(120));
        assert_eq!("1.5s".parse::<Dur>().unwrap(), Dur::from_millis(1500));
        assert_eq!("250us".parse::<Dur>().unwrap().as_micros(), 250);
        assert_eq!("0".parse::<Dur>().unwrap(), Dur::ZERO);
        assert_eq!("1h".parse::<Dur>().unwrap(), Dur::from_secs(3600));
        assert_eq!("2m20s".parse::<Dur>().unwrap(), Dur::from_secs(140));
        assert_eq!("1h 30m".parse::<Dur>().unwrap(), Dur::from_secs(5400));
        assert_eq!("1s500ms".parse::<Dur>().unwrap(), Dur::from_millis(1500));
    }

    #[test]
    fn compound_durations_need_a_unit_on_every_part() {
        for bad in ["2m20", "2m 20", "m20s", "2m20x", "2m-20s", "2m20s."] {
            let err = bad.parse::<Dur>().unwrap_err().to_string();
            assert!(err.contains(&format!("invalid duration `{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_without_unit_are_rejected() {
        let err = "30".parse::<Dur>().unwrap_err().to_string();
        assert!(err.contains("invalid duration `30`"), "{err}");
        assert!("30x".parse::<Dur>().is_err());
        assert!("-5s".parse::<Dur>().is_err());
        assert!("s".parse::<Dur>().is_err());
    }

    #[test]
    fn sizes_parse_binary_and_si() {
        assert_eq!("64B".parse::<ByteSize>().unwrap(), ByteSize(64));
        assert_eq!("512".parse::<ByteSize>().unwrap(), ByteSize(512));
        assert_eq!("4KiB".parse::<ByteSize>().unwrap(), ByteSize(4096));
        assert_eq!("1.5MiB".parse::<ByteSize>().unwrap(), ByteSize(1_572_864));
        assert_eq!("10KB".parse::<ByteSize>().unwrap(), ByteSize(10_000));
        assert!("4 parsecs".parse::<ByteSize>().is_err());
    }

    #[test]
    fn rates_accept_count_over_period() {
        assert_eq!("500/s".parse::<Rate>().unwrap().as_per_sec(), 500.0);
        let r = "1/30s".parse::<Rate>().unwrap().as_per_sec();
        assert!((r - 1.0 / 30.0).abs() < 1e-12);
        assert_eq!("12/h".parse::<Rate>().unwrap().as_per_sec(), 12.0 / 3600.0);
        assert_eq!("3/5m".parse::<Rate>().unwrap().as_per_sec(), 3.0 / 300.0);
        assert!("500".parse::<Rate>().is_err());
        assert!("5/0s".parse::<Rate>().is_err());
    }

    #[test]
    fn ratios_accept_percent_and_fraction() {
        assert_eq!("30%".parse::<Ratio>().unwrap(), Ratio(0.3));
        assert_eq!("0.25".parse::<Ratio>().unwrap(), Ratio(0.25));
        assert!("130%".parse::<Ratio>().is_err());
        assert!("1.5".parse::<Ratio>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["30s", "2m", "1h", "250ms", "15us"] {
            assert_eq!(s.parse::<Dur>().unwrap().to_string(), s);
        }
        for s in ["64B", "4KiB", "1MiB"] {
            assert_eq!(s.parse::<ByteSize>().unwrap().to_string(), s);
        }
        assert_eq!("1/30s".parse::<Rate>().unwrap().to_string(), "1/30s");
        assert_eq!("500/s".parse::<Rate>().unwrap().to_string(), "500/s");
    }
}
