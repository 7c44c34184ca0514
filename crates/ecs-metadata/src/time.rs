//! RFC 3339 timestamps as the endpoint writes them (`2025-02-27T05:09:52.332595252Z`).

/// Seconds since the Unix epoch for an RFC 3339 timestamp, with up to nanosecond precision.
///
/// Returns `None` for anything malformed and for timestamps before 1970-01-02: the ECS agent
/// writes Go's zero time (`0001-01-01T00:00:00Z`) for events that have not happened, and no
/// real ECS event predates 1970.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let separator =
        |at: usize, expected: &[u8]| bytes.get(at).is_some_and(|b| expected.contains(b));
    if !(separator(4, b"-")
        && separator(7, b"-")
        && separator(10, b"Tt ")
        && separator(13, b":")
        && separator(16, b":"))
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut at = 19;
    let mut nanos: i64 = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(bytes[at] - b'0');
            }
            at += 1;
        }
        let fraction_digits = at - start;
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..9 {
            nanos *= 10;
        }
    }
    let offset_seconds = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && separator(at + 3, b":") => {
            let offset = digits(at + 1, 2)? * 3600 + digits(at + 4, 2)? * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };

    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    if seconds < 86_400 {
        return None;
    }
    // Whole seconds plus the fraction: nearer the true instant than converting integer
    // nanoseconds (which exceed f64 precision), and what ecs_exporter computes.
    Some(seconds as f64 + nanos as f64 / 1e9)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps_the_endpoint_writes() {
        // Reference values from `date -u -d '...' +%s.%N`.
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86_400.0));
        assert_eq!(parse_rfc3339("2025-02-27T05:22:43Z"), Some(1_740_633_763.0));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00+01:00"),
            Some(951_865_200.0)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5-00:30"),
            Some(1_709_209_800.5)
        );
        let precise = parse_rfc3339("2025-02-27T05:09:52.332595252Z").expect("valid");
        // The f64 nearest the true instant 1740632992.332595252.
        assert_eq!(precise, 1_740_632_992.332_595_3);
        // More than nine fraction digits are cut, not rejected.
        assert_eq!(
            parse_rfc3339("2025-02-27T05:22:43.0000000001Z"),
            Some(1_740_633_763.0)
        );
    }

    #[test]
    fn rejects_zero_times_and_malformed_text() {
        for text in [
            "0001-01-01T00:00:00Z",
            "",
            "2025-02-27",
            "2025-02-27T05:22:43",
            "2025-13-01T00:00:00Z",
            "2025-02-27T05:22:43.Z",
            "2025-02-27T05:22:43Zjunk",
            "２025-02-27T05:22:43Z",
            "+025-02-27T05:22:43Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = parse_rfc3339(&text);
        }
    }
}
