//! Value distributions for payload sizes and processing times.
//!
//! In YAML a distribution is either a plain value (`size: 512B`, shorthand for `fixed`) or a
//! mapping with exactly one key naming the shape:
//!
//! ```yaml
//! size: {uniform: {min: 200B, max: 2KiB}}
//! size: {normal: {mean: 1KiB, stddev: 200B, min: 256B, max: 4KiB}}
//! size: {lognormal: {median: 800B, sigma: 0.6, max: 16KiB}}
//! processing_time: {exponential: {mean: 2ms, max: 50ms}}
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use schemars::JsonSchema;
use serde::de::{self, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::units::{ByteSize, Dur, UnitError};

/// A quantity a distribution can be drawn over: sizes in bytes, durations in microseconds.
pub trait Quantity: Copy + fmt::Display + FromStr<Err = UnitError> {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Quantity for ByteSize {
    fn to_f64(self) -> f64 {
        self.0 as f64
    }

    fn from_f64(v: f64) -> Self {
        ByteSize(v.max(0.0).round() as u64)
    }
}

impl Quantity for Dur {
    fn to_f64(self) -> f64 {
        self.as_micros() as f64
    }

    fn from_f64(v: f64) -> Self {
        Dur(std::time::Duration::from_micros(v.max(0.0).round() as u64))
    }
}

/// A distribution of a quantity. Draws are clamped to `min`/`max` when given.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dist<U> {
    /// Always the same value.
    Fixed(U),
    /// Uniform between `min` and `max` inclusive.
    Uniform(UniformParams<U>),
    /// Normal with `mean` and `stddev`, clamped to the bounds.
    Normal(NormalParams<U>),
    /// Log-normal with the given `median` and shape `sigma`: a long right tail, typical of rich
    /// diagnostic envelopes. Clamped to the bounds.
    Lognormal(LognormalParams<U>),
    /// Exponential with the given `mean`, clamped to the bounds.
    Exponential(ExponentialParams<U>),
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(bound(deserialize = "U: Deserialize<'de>"))]
pub struct UniformParams<U> {
    pub min: U,
    pub max: U,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(bound(deserialize = "U: Deserialize<'de>"))]
pub struct NormalParams<U> {
    pub mean: U,
    pub stddev: U,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<U>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<U>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(bound(deserialize = "U: Deserialize<'de>"))]
pub struct LognormalParams<U> {
    pub median: U,
    pub sigma: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<U>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<U>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(bound(deserialize = "U: Deserialize<'de>"))]
pub struct ExponentialParams<U> {
    pub mean: U,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<U>,
}

impl<U: Quantity> Dist<U> {
    /// The smallest value a draw can take.
    pub fn lower_bound(&self) -> f64 {
        match self {
            Dist::Fixed(v) => v.to_f64(),
            Dist::Uniform(p) => p.min.to_f64(),
            Dist::Normal(p) => p.min.map_or(0.0, Quantity::to_f64),
            Dist::Lognormal(p) => p.min.map_or(0.0, Quantity::to_f64),
            Dist::Exponential(_) => 0.0,
        }
    }

    /// The largest value a draw can take, if bounded.
    pub fn upper_bound(&self) -> Option<f64> {
        match self {
            Dist::Fixed(v) => Some(v.to_f64()),
            Dist::Uniform(p) => Some(p.max.to_f64()),
            Dist::Normal(p) => p.max.map(Quantity::to_f64),
            Dist::Lognormal(p) => p.max.map(Quantity::to_f64),
            Dist::Exponential(p) => p.max.map(Quantity::to_f64),
        }
    }

    /// The mean of the unclamped distribution (used for planned byte rates).
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Fixed(v) => v.to_f64(),
            Dist::Uniform(p) => (p.min.to_f64() + p.max.to_f64()) / 2.0,
            Dist::Normal(p) => p.mean.to_f64(),
            Dist::Lognormal(p) => p.median.to_f64() * (p.sigma * p.sigma / 2.0).exp(),
            Dist::Exponential(p) => p.mean.to_f64(),
        }
    }

    /// Problems with the parameters, as (field, message) pairs relative to this distribution.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bounds = |min: Option<U>, max: Option<U>, prefix: &str| {
            if let (Some(lo), Some(hi)) = (min, max)
                && lo.to_f64() > hi.to_f64()
            {
                out.push((format!("{prefix}.min"), format!("min {lo} is greater than max {hi}")));
            }
        };
        match self {
            Dist::Fixed(_) => {}
            Dist::Uniform(p) => bounds(Some(p.min), Some(p.max), "uniform"),
            Dist::Normal(p) => bounds(p.min, p.max, "normal"),
            Dist::Lognormal(p) => {
                bounds(p.min, p.max, "lognormal");
                if !(p.sigma.is_finite() && p.sigma >= 0.0 && p.sigma <= 10.0) {
                    out.push(("lognormal.sigma".into(), format!("sigma must be between 0 and 10, found {}", p.sigma)));
                }
                if p.median.to_f64() <= 0.0 {
                    out.push(("lognormal.median".into(), "median must be greater than zero".into()));
                }
            }
            Dist::Exponential(p) => {
                if p.mean.to_f64() <= 0.0 {
                    out.push(("exponential.mean".into(), "mean must be greater than zero".into()));
                }
            }
        }
        out
    }

    /// Draw one value.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> U {
        let clamp = |v: f64, min: Option<U>, max: Option<U>| {
            let lo = min.map_or(0.0, Quantity::to_f64);
            let hi = max.map_or(f64::MAX, Quantity::to_f64);
            U::from_f64(if v.is_finite() { v.clamp(lo, hi.max(lo)) } else { lo })
        };
        match self {
            Dist::Fixed(v) => *v,
            Dist::Uniform(p) => {
                let (lo, hi) = (p.min.to_f64(), p.max.to_f64());
                if hi <= lo { p.min } else { U::from_f64(rng.random_range(lo..=hi)) }
            }
            Dist::Normal(p) => match Normal::new(p.mean.to_f64(), p.stddev.to_f64()) {
                Ok(d) => clamp(d.sample(rng), p.min, p.max),
                Err(_) => p.mean,
            },
            Dist::Lognormal(p) => match LogNormal::new(p.median.to_f64().max(1e-9).ln(), p.sigma) {
                Ok(d) => clamp(d.sample(rng), p.min, p.max),
                Err(_) => p.median,
            },
            Dist::Exponential(p) => match Exp::new(1.0 / p.mean.to_f64().max(1e-9)) {
                Ok(d) => clamp(d.sample(rng), None, p.max),
                Err(_) => p.mean,
            },
        }
    }
}

const VARIANTS: &[&str] = &["fixed", "uniform", "normal", "lognormal", "exponential"];

enum Tag {
    Fixed,
    Uniform,
    Normal,
    Lognormal,
    Exponential,
    /// A plain value such as `512B`: shorthand for `fixed`.
    Shorthand(String),
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a distribution name or a plain value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                Ok(match v {
                    "fixed" => Tag::Fixed,
                    "uniform" => Tag::Uniform,
                    "normal" => Tag::Normal,
                    "lognormal" => Tag::Lognormal,
                    "exponential" => Tag::Exponential,
                    other => Tag::Shorthand(other.to_string()),
                })
            }
        }
        d.deserialize_identifier(TagVisitor)
    }
}

impl<'de, U> Deserialize<'de> for Dist<U>
where
    U: Quantity + Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DistVisitor<U>(PhantomData<U>);
        impl<'de, U: Quantity + Deserialize<'de>> Visitor<'de> for DistVisitor<U> {
            type Value = Dist<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a plain value or one of `fixed`, `uniform`, `normal`, `lognormal`, `exponential`")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Dist<U>, A::Error> {
                let (tag, variant) = data.variant::<Tag>()?;
                match tag {
                    Tag::Fixed => variant.newtype_variant().map(Dist::Fixed),
                    Tag::Uniform => variant.newtype_variant().map(Dist::Uniform),
                    Tag::Normal => variant.newtype_variant().map(Dist::Normal),
                    Tag::Lognormal => variant.newtype_variant().map(Dist::Lognormal),
                    Tag::Exponential => variant.newtype_variant().map(Dist::Exponential),
                    Tag::Shorthand(text) => match text.parse::<U>() {
                        Ok(v) => variant.unit_variant().map(|()| Dist::Fixed(v)),
                        Err(e) => Err(de::Error::custom(format!(
                            "unknown distribution `{text}`: expected a plain value or one of `fixed`, `uniform`, `normal`, `lognormal`, `exponential` ({e})"
                        ))),
                    },
                }
            }
        }
        d.deserialize_enum("Dist", VARIANTS, DistVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn load(src: &str) -> Result<Dist<ByteSize>, Vec<yaml::YamlError>> {
        #[derive(Deserialize)]
        struct W {
            size: Dist<ByteSize>,
        }
        yaml::from_node::<W>(&yaml::parse(src).unwrap()).map(|w| w.size)
    }

    #[test]
    fn shorthand_is_fixed() {
        assert_eq!(load("size: 512B").unwrap(), Dist::Fixed(ByteSize(512)));
        assert_eq!(load("size: 64").unwrap(), Dist::Fixed(ByteSize(64)));
    }

    #[test]
    fn tagged_forms_parse() {
        assert_eq!(
            load("size: {uniform: {min: 1KiB, max: 2KiB}}").unwrap(),
            Dist::Uniform(UniformParams { min: ByteSize(1024), max: ByteSize(2048) })
        );
        let d = load("size:\n  lognormal:\n    median: 800B\n    sigma: 0.5\n").unwrap();
        assert!(matches!(d, Dist::Lognormal(_)));
    }

    #[test]
    fn unknown_shape_is_an_error_at_its_key() {
        let errs = load("size:\n  gaussian: {mean: 1KiB}\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].pos.line, 2);
        assert!(errs[0].message.contains("unknown distribution `gaussian`"), "{}", errs[0].message);
    }

    #[test]
    fn missing_parameter_names_the_field() {
        let errs = load("size:\n  uniform: {min: 1KiB}\n").unwrap_err();
        assert_eq!(errs[0].path, "size.uniform.max");
    }

    #[test]
    fn samples_stay_within_bounds() {
        let d = load("size: {normal: {mean: 1KiB, stddev: 2KiB, min: 100B, max: 3KiB}}").unwrap();
        let mut rng = crate::plan::rng::SplitMix::new(7);
        for _ in 0..10_000 {
            let v = d.sample(&mut rng).0;
            assert!((100..=3072).contains(&v), "{v}");
        }
    }
}
