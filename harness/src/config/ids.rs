//! Device ids: the `fleet.id_pattern` of a scenario (`device-{n:06}`).
//!
//! It lives in config because validation needs it (the longest id decides the smallest JSON
//! value, see [`super::envelope`]); the plan renders ids with it and the producer writes them.

/// Why an id pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdPatternError {
    #[error("the pattern needs a `{{n}}` placeholder for the device number")]
    NoPlaceholder,
    #[error("unclosed `{{` in the pattern")]
    Unclosed,
    #[error("unknown placeholder `{{{0}}}`: use `{{n}}` or `{{n:06}}`")]
    UnknownPlaceholder(String),
    #[error("bad width in `{{{0}}}`: use e.g. `{{n:06}}`")]
    BadWidth(String),
    #[error("the pattern may contain only one `{{n}}` placeholder")]
    SeveralPlaceholders,
}

/// A device id pattern such as `device-{n:06}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl Default for IdPattern {
    fn default() -> Self {
        IdPattern { prefix: "device-".into(), width: 6, suffix: String::new() }
    }
}

impl IdPattern {
    /// Parse a pattern with exactly one `{n}` or `{n:0W}` placeholder.
    pub fn parse(s: &str) -> Result<IdPattern, IdPatternError> {
        let open = s.find('{').ok_or(IdPatternError::NoPlaceholder)?;
        let close = s[open..].find('}').map(|i| open + i).ok_or(IdPatternError::Unclosed)?;
        let inner = &s[open + 1..close];
        let width = match inner {
            "n" => 0,
            _ => {
                let spec = inner.strip_prefix("n:").ok_or_else(|| IdPatternError::UnknownPlaceholder(inner.into()))?;
                spec.trim_start_matches('0')
                    .parse::<usize>()
                    .ok()
                    .filter(|w| *w <= 20)
                    .ok_or_else(|| IdPatternError::BadWidth(inner.into()))?
            }
        };
        let suffix = &s[close + 1..];
        if suffix.contains('{') || s[..open].contains('}') {
            return Err(IdPatternError::SeveralPlaceholders);
        }
        Ok(IdPattern { prefix: s[..open].to_string(), width, suffix: suffix.to_string() })
    }

    /// Write the id of device `n` into `out` (cleared first).
    pub fn write(&self, n: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.prefix.as_bytes());
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        // Zero padding from the same buffer: one copy, not a push per padding digit (this runs
        // once per record sent).
        let padded = buf.len() - self.width.clamp(buf.len() - i, buf.len());
        buf[padded..i].fill(b'0');
        for _ in buf.len()..self.width {
            out.push(b'0');
        }
        out.extend_from_slice(&buf[padded..]);
        out.extend_from_slice(self.suffix.as_bytes());
    }

    pub fn render(&self, n: u64) -> String {
        let mut v = Vec::new();
        self.write(n, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The longest id this pattern produces for `devices` devices.
    pub fn max_len(&self, devices: u64) -> usize {
        self.render(devices.saturating_sub(1)).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_errors_say_what_to_write() {
        // The messages users read in `validate` (they were strings before they were types).
        let e = |p: &str| IdPattern::parse(p).unwrap_err().to_string();
        assert_eq!(e("device"), "the pattern needs a `{n}` placeholder for the device number");
        assert_eq!(e("d-{n"), "unclosed `{` in the pattern");
        assert_eq!(e("d-{id}"), "unknown placeholder `{id}`: use `{n}` or `{n:06}`");
        assert_eq!(e("d-{n:x}"), "bad width in `{n:x}`: use e.g. `{n:06}`");
        assert_eq!(e("d-{n}-{n}"), "the pattern may contain only one `{n}` placeholder");
    }

    #[test]
    fn ids_are_padded_to_the_width_and_never_cut() {
        let p = |prefix: &str, width: usize, suffix: &str| IdPattern {
            prefix: prefix.into(),
            width,
            suffix: suffix.into(),
        };
        assert_eq!(p("device-", 6, "").render(378), "device-000378");
        assert_eq!(p("d", 0, "").render(0), "d0");
        assert_eq!(p("d", 2, "x").render(12345), "d12345x");
        assert_eq!(p("", 22, "").render(7), format!("{:022}", 7));
        assert_eq!(p("", 20, "").render(u64::MAX), u64::MAX.to_string());
    }
}
