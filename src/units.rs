//! Values people write: durations (`250ms`, `30s`, `1m30s`) and sizes (`64B`, `4KiB`).
//!
//! Both serialize back to the same human spelling, exactly, so that plans and reports round-trip.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression every duration string matches (used in the JSON Schema).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// The regular expression every size string matches (used in the JSON Schema).
pub const SIZE_PATTERN: &str = r"^[0-9]+(B|KB|KiB|MB|MiB)$";

/// The longest duration redis-test takes anywhere (a phase, the phases together, a fault, a
/// timeout, a threshold): 365 days. Longer is a typo, and bounding it keeps every offset within
/// what a clock instant and a count of nanoseconds hold even at `--time-scale 100`.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration written as text: `250ms`, `30s`, `5m`, `1h`, `1m30s`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

/// Parses a duration such as `250ms` or `1m30s`; a bare number is refused because its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. `30s`, `250ms` or `5m`".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{s}` has no unit; write e.g. `{s}s` or `{s}ms`"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("`{s}`: a number without a unit")),
            other => return Err(format!("`{s}`: unknown unit `{other}`; use ns, us, ms, s, m or h")),
        };
        if num.is_empty() {
            return Err(format!("`{s}`: unit `{unit}` without a number"));
        }
        let nanos = match num.split_once('.') {
            None => num.parse::<u128>().map_err(|_| format!("`{s}` is too large"))?.checked_mul(nanos_per),
            Some((int, frac)) => {
                if int.is_empty() || frac.is_empty() || frac.contains('.') || frac.len() > 9 {
                    return Err(format!("`{s}`: malformed number `{num}`"));
                }
                let int: u128 = int.parse().map_err(|_| format!("`{s}` is too large"))?;
                let scale = 10u128.pow(frac.len() as u32);
                let frac: u128 = frac.parse().map_err(|_| format!("`{s}`: malformed number `{num}`"))?;
                int.checked_mul(nanos_per).and_then(|i| i.checked_add(frac * nanos_per / scale))
            }
        };
        total = nanos.and_then(|n| total.checked_add(n)).ok_or_else(|| format!("`{s}` is too large"))?;
        rest = tail;
    }
    if total > MAX_DURATION.as_nanos() {
        return Err(format!("`{s}` is longer than {}, the longest duration redis-test takes (365 days)", format_duration(MAX_DURATION)));
    }
    // At most MAX_DURATION: the seconds fit.
    Ok(Duration::new((total / 1_000_000_000) as u64, (total % 1_000_000_000) as u32))
}

/// Formats a duration exactly, as a compound of whole units (`90s` → `1m30s`, `1h`, `1s500ms`).
pub fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, per) in [("h", 3_600_000_000_000u128), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1)] {
        if nanos >= per {
            out.push_str(&format!("{}{unit}", nanos / per));
            nanos %= per;
        }
    }
    out
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration with a unit: ns, us, ms, s, m or h (e.g. `250ms`, `30s`, `5m`, `1m30s`).",
            "examples": ["250ms", "30s", "5m", "1h"]
        })
    }
}

/// A size in bytes, written as a number of bytes or as text: `64B`, `4KiB`, `1MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// Parses `64B`, `4KiB`, `1MB` (KB/MB are powers of 1000, KiB/MiB powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1_024,
        "MB" => 1_000_000,
        "MiB" => 1_048_576,
        other => return Err(format!("`{s}`: unknown size unit `{other}`; use B, KB, KiB, MB or MiB")),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size; write e.g. `64B` or `4KiB`"))?;
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n.is_multiple_of(1_048_576) {
            write!(f, "{}MiB", n / 1_048_576)
        } else if n != 0 && n.is_multiple_of(1_024) {
            write!(f, "{}KiB", n / 1_024)
        } else {
            write!(f, "{n}B")
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(s) => parse_size(&s).map(Self).map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": SIZE_PATTERN }
            ],
            "description": "A size: a number of bytes, or text with a unit B, KB, KiB, MB or MiB (e.g. `64B`, `4KiB`).",
            "examples": ["64B", "4KiB"]
        })
    }
}

/// `#[serde(with = "crate::units::serde_duration")]` for a plain `Duration` written as `30s`.
pub mod serde_duration {
    use super::{Duration, format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration in its exact human form.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Reads a human duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Microseconds as `850us`, `1.25ms`, `2.503s`, `1m30s`.
pub fn format_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{}us", round_sig(us))
    } else if us < 1_000_000.0 {
        format!("{}ms", round_sig(us / 1000.0))
    } else if us < 60e6 {
        format!("{}s", round_sig(us / 1e6))
    } else {
        format_duration(Duration::from_secs((us / 1e6).round() as u64))
    }
}

pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 4 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits.max(0));
    (x * f).round() / f
}

/// Text from outside (a report, a scenario) made safe for a terminal: control characters and the
/// bidirectional overrides that reorder what is shown are printed escaped (`\u{1b}`), so a crafted
/// name can neither move the cursor, set a title, clear the screen nor disguise itself.
pub fn escape_control(s: &str) -> String {
    escape_except(s, &[])
}

/// [`escape_control`] for text of many lines: line breaks kept.
pub fn escape_terminal(s: &str) -> String {
    escape_except(s, &['\n'])
}

fn escape_except(s: &str, keep: &[char]) -> String {
    let hidden = |c: char| {
        !keep.contains(&c) && (c.is_control() || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    };
    if !s.chars().any(hidden) {
        return s.to_owned();
    }
    s.chars().map(|c| if hidden(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format_exactly() {
        let cases = [
            ("250ms", 250_000_000u128),
            ("30s", 30_000_000_000),
            ("5m", 300_000_000_000),
            ("1h", 3_600_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("100us", 100_000),
        ];
        for (text, nanos) in cases {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_nanos(), nanos, "{text}");
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text} round trip");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("30 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("99999999999999999999999h").unwrap_err().contains("longer than 8760h"));
        assert!(parse_duration("999999999999999999999999999999h").unwrap_err().contains("too large"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_end_at_365_days() {
        assert_eq!(parse_duration("8760h").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("8759h59m59s999ms999us999ns").unwrap(), MAX_DURATION - Duration::from_nanos(1));
        for over in ["8760h1ns", "8761h", "5000000000000000h", "18446744073709551615s"] {
            let e = parse_duration(over).unwrap_err();
            assert!(e.contains("is longer than 8760h, the longest duration redis-test takes"), "{over}: {e}");
        }
        // Every duration taken, scaled by the largest time scale, is still a clock offset.
        let scaled = MAX_DURATION.mul_f64(100.0);
        assert!(std::time::Instant::now().checked_add(scaled).is_some());
        assert!(u64::try_from(scaled.as_nanos()).is_ok());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64B").unwrap(), 64);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert!(parse_size("4kb").is_err());
        assert_eq!(ByteSize(4096).to_string(), "4KiB");
    }
}
