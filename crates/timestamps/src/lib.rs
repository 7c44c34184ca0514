//! Time as ecs-prom reads and writes it: RFC 3339 timestamps as the ECS metadata endpoint and
//! the AWS APIs write them (`2025-02-27T05:09:52.332595252Z`), and the current time in seconds
//! since the Unix epoch.

/// Seconds since the Unix epoch now (0 if the clock is set before 1970).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Milliseconds since the Unix epoch now (0 if the clock is set before 1970), as Prometheus
/// timestamps samples.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

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

/// Writes seconds since the Unix epoch as RFC 3339 in UTC with nanoseconds, the way the ECS
/// agent writes timestamps (`2025-02-27T05:22:49.186680233Z`). Instants before the epoch are
/// written as the epoch.
pub fn format_rfc3339(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    let whole = seconds.floor() as i64;
    let nanos = (((seconds - seconds.floor()) * 1e9).round() as i64).min(999_999_999);
    let (days, second_of_day) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// An HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) for whole seconds since the
/// Unix epoch, as servers write their `Date` header.
pub fn format_http_date(unix_seconds: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_seconds / 86_400) as i64;
    let second_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        // 1970-01-01 was a Thursday.
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
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
    #[test]
    fn http_dates_are_written_as_servers_write_them() {
        // RFC 7231's own example, and a leap day.
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            format_http_date(1_709_164_800),
            "Thu, 29 Feb 2024 00:00:00 GMT"
        );
    }

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

    #[test]
    fn formats_like_the_agent() {
        // Reference: `date -u -d @1740633769.186680233 +%Y-%m-%dT%H:%M:%S.%NZ`.
        assert_eq!(
            format_rfc3339(1_740_633_769.25),
            "2025-02-27T05:22:49.250000000Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400.0),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(format_rfc3339(-5.0), "1970-01-01T00:00:00.000000000Z");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = parse_rfc3339(&text);
        }

        #[test]
        fn formatting_reads_back(seconds in 86_400u32..4_000_000_000u32, millis in 0u32..1000) {
            let instant = f64::from(seconds) + f64::from(millis) / 1000.0;
            let back = parse_rfc3339(&format_rfc3339(instant)).expect("own output parses");
            proptest::prop_assert!((back - instant).abs() < 1e-6, "{instant} -> {back}");
        }
    }
}
