//! When to try again: exponential backoff with jitter between a minimum and a maximum, and
//! the receiver's `Retry-After` (seconds or an HTTP date).

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Exponential backoff: each delay doubles from `min` up to `max`, and a random part of up to
/// half of it is taken off so shards and agents do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    attempts: u64,
    random: RandomState,
}

impl Backoff {
    /// A backoff starting at `min` and never above `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            current: min,
            attempts: 0,
            random: RandomState::new(),
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        self.attempts += 1;
        let fraction = (self.random.hash_one(self.attempts) % 1000) as f64 / 1000.0;
        ceiling
            .mul_f64(1.0 - fraction / 2.0)
            .max(self.min.min(ceiling))
    }

    /// Starts again from `min`.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// How long `Retry-After: value` says to wait, at `now_unix_seconds`: a number of seconds or
/// an HTTP date (IMF-fixdate, as RFC 9110 requires senders to write it). `None` when it is
/// neither.
pub fn parse_retry_after(value: &str, now_unix_seconds: u64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = parse_http_date(value)?;
    Some(Duration::from_secs(date.saturating_sub(now_unix_seconds)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as seconds since the Unix epoch.
fn parse_http_date(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    u64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7", 0), Some(Duration::from_secs(7)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", 784_111_777),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", 784_111_777),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
    }

    #[test]
    fn the_backoff_doubles_within_its_bounds_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(30), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        let mut ceiling = Duration::from_millis(30);
        for delay in &delays {
            assert!(
                *delay <= ceiling && *delay >= ceiling / 2,
                "{delay:?} {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(5));
        }
        assert!(delays[11] >= Duration::from_millis(2500));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(30));
    }
}
