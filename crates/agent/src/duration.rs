//! Durations in Prometheus' syntax (`model.ParseDuration`): `1y2w3d4h5m6s7ms`, each unit at
//! most once and in that order, integers only, `0` alone allowed.

use std::time::Duration;

/// The units in the order Prometheus requires them, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// The largest duration Go's `time.Duration` holds, in milliseconds.
const MAX_MILLIS: u64 = (i64::MAX as u64) / 1_000_000;

/// Reads a duration as Prometheus does, with its error messages.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text {
        "0" => return Ok(Duration::ZERO),
        "" => return Err("empty duration string".to_owned()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {text:?}");
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
        // "ms" before "m", so that "5ms" is not read as 5m followed by "s".
        let unit = UNITS[next_unit..]
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| after.starts_with(name))
            .max_by_key(|(_, (name, _))| name.len());
        let Some((offset, (name, millis))) = unit else {
            return Err(invalid());
        };
        next_unit += offset + 1;
        rest = &after[name.len()..];
        // Go's Atoi saturates nothing: a number too long for an int is out of range too.
        let n: u64 = number
            .parse()
            .map_err(|_| "duration out of range".to_owned())?;
        if n > MAX_MILLIS / millis {
            return Err("duration out of range".to_owned());
        }
        total = total
            .checked_add(n * millis)
            .filter(|&t| t <= MAX_MILLIS)
            .ok_or_else(|| "duration out of range".to_owned())?;
    }
    Ok(Duration::from_millis(total))
}

/// Writes a duration as Prometheus shows it (`model.Duration.String`): `0s`, `1m30s`, `90d`;
/// years and weeks only when they divide it exactly.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (index, (unit, length)) in UNITS.iter().enumerate() {
        let exact_only = index < 2;
        if exact_only && millis % length != 0 {
            continue;
        }
        let count = millis / length;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(unit);
            millis -= count * length;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prometheus_syntax_is_read() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("1s", 1000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("2d", 2 * 86_400_000),
            ("1w", 7 * 86_400_000),
            ("1y", 365 * 86_400_000),
            ("1y1w1d1h1m1s1ms", 32_230_861_001),
            ("90m", 5_400_000),
            ("5m0s", 300_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_are_written_as_prometheus_writes_them() {
        // Expected values worked out from Go's model.Duration.String rules by hand.
        let cases = [
            (0, "0s"),
            (500, "500ms"),
            (15_000, "15s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (90 * 86_400_000, "90d"),
            (14 * 86_400_000, "2w"),
            (15 * 86_400_000, "15d"),
            (365 * 86_400_000, "1y"),
            (3_661_001, "1h1m1s1ms"),
        ];
        for (millis, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(millis)), text);
        }
    }

    #[test]
    fn what_prometheus_refuses_is_refused() {
        assert_eq!(parse_duration(""), Err("empty duration string".to_owned()));
        for text in [
            "1", "30", "1.5s", "1s1m", "1m1m", "-1s", "1 s", "1S", "1ns", "1us", "s", "1x", " 1s",
            "1ms1s",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(format!("not a valid duration string: {text:?}")),
                "{text}"
            );
        }
        for text in [
            "300000y",
            "9223372036855ms",
            "99999999999999999999s",
            "293y",
            "292y25w",
        ] {
            assert_eq!(
                parse_duration(text),
                Err("duration out of range".to_owned()),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("9223372036854ms"),
            Ok(Duration::from_millis(9_223_372_036_854))
        );
    }
}
