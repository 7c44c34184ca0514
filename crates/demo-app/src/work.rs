//! Simulated work: latencies drawn from a log-normal distribution given by its median and
//! 99th percentile, and a cheap random source shared by the handlers and the load generator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static STATE: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

/// A pseudo-random value in `[0, 1)` (SplitMix64 over a shared counter; not for secrets).
pub(crate) fn unit() -> f64 {
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Random hex digits (for trace and span ids).
pub(crate) fn hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit((unit() * 16.0) as u32 % 16, 16).unwrap_or('0'))
        .collect()
}

/// A latency whose median and 99th percentile are the given ones (log-normal).
pub(crate) fn latency(median: Duration, p99: Duration) -> Duration {
    let median_ms = median.as_secs_f64() * 1000.0;
    if median_ms <= 0.0 {
        return Duration::ZERO;
    }
    let sigma = ((p99.as_secs_f64() * 1000.0 / median_ms).max(1.0)).ln() / 2.326;
    // Box-Muller: a standard normal draw from two uniform ones.
    let normal = (-2.0 * (1.0 - unit()).ln()).sqrt() * (2.0 * std::f64::consts::PI * unit()).cos();
    Duration::from_secs_f64((median_ms * (sigma * normal).exp()).min(30_000.0) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_have_the_requested_median_and_tail() {
        let (median, p99) = (Duration::from_millis(40), Duration::from_millis(600));
        let mut draws: Vec<f64> = (0..20_000)
            .map(|_| latency(median, p99).as_secs_f64() * 1000.0)
            .collect();
        draws.sort_by(f64::total_cmp);
        let (observed_median, observed_p99) = (draws[10_000], draws[19_800]);
        assert!(
            (observed_median - 40.0).abs() < 4.0,
            "median {observed_median}"
        );
        assert!((observed_p99 - 600.0).abs() < 120.0, "p99 {observed_p99}");
    }
}
