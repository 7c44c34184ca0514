//! The arithmetic of the live summary: rates of counters and quantiles of histograms, from
//! timestamped observations, with Prometheus' rules for counter resets and bucket
//! interpolation.

/// One observation of a series: seconds on any clock, and the value.
pub type Point = (f64, f64);

/// Increase of a counter from the first point to the last. A drop in value is a counter
/// reset: the value after it counts as the increase since the reset, as in PromQL.
/// `None` with fewer than two points.
pub fn increase(points: &[Point]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let increase = points
        .windows(2)
        .map(|pair| {
            let (before, after) = (pair[0].1, pair[1].1);
            if after < before {
                after
            } else {
                after - before
            }
        })
        .sum();
    Some(increase)
}

/// Rate per second of a counter that changes at every event (an application's request
/// counter): the [`increase`] over the time between the first and the last point, as
/// PromQL's `rate()` without extrapolation.
pub fn event_rate(points: &[Point]) -> Option<f64> {
    let elapsed = points.last()?.0 - points.first()?.0;
    if elapsed <= 0.0 {
        return None;
    }
    Some(increase(points)? / elapsed)
}

/// Rate per second of a counter that its source only updates once per sample period (the
/// ECS agent's stats: every second on EC2, every 10 s on Fargate), observed more often than
/// that. The rate runs from the first observed change to the last, which both happened at
/// the start of a sample period, so the stair steps do not bias it the way a fixed window
/// would. After a reset only the points since the reset count.
///
/// A counter that has not moved for `quiet` seconds is idle: rate 0. Otherwise `None` while
/// fewer than two changes were seen.
pub fn sampled_rate(points: &[Point], quiet: f64) -> Option<f64> {
    let since_reset = points
        .windows(2)
        .rposition(|pair| pair[1].1 < pair[0].1)
        .map_or(0, |index| index + 1);
    let points = &points[since_reset..];
    let mut changes = points
        .windows(2)
        .filter(|pair| pair[1].1 != pair[0].1)
        .map(|pair| pair[1]);
    // A reset point is itself the first change: it is when the new value was first seen.
    let first = if since_reset > 0 {
        points.first().copied()
    } else {
        changes.next()
    };
    let last = changes.next_back().or(first);
    let now = points.last()?.0;
    match (first, last) {
        (Some(first), Some(last)) if last.0 > first.0 && now - last.0 < quiet => {
            Some((last.1 - first.1) / (last.0 - first.0))
        }
        _ => {
            let still_since = last.map_or(points.first()?.0, |change| change.0);
            (now - still_since >= quiet).then_some(0.0)
        }
    }
}

/// The `q` quantile of a histogram from the increases of its cumulative buckets (upper bound,
/// count; any order; the `+Inf` bucket required), interpolated linearly inside the bucket
/// that holds it, as PromQL's `histogram_quantile` does. `None` without observations or
/// without a `+Inf` bucket.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut buckets = buckets.to_vec();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(last_bound, total) = buckets.last()?;
    if last_bound != f64::INFINITY || buckets.len() < 2 || total <= 0.0 || !(0.0..=1.0).contains(&q)
    {
        return None;
    }
    let rank = q * total;
    let index = buckets.iter().position(|&(_, count)| count >= rank)?;
    if index == buckets.len() - 1 {
        // In the +Inf bucket: the highest finite bound is all that is known.
        return Some(buckets[index - 1].0);
    }
    let (upper, count) = buckets[index];
    let (lower, below) = match index {
        0 if upper <= 0.0 => return Some(upper),
        0 => (0.0, 0.0),
        _ => buckets[index - 1],
    };
    let inside = count - below;
    if inside <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_rate_is_the_increase_over_the_time_between_first_and_last() {
        assert_eq!(event_rate(&[]), None);
        assert_eq!(event_rate(&[(1.0, 5.0)]), None);
        assert_eq!(event_rate(&[(0.0, 10.0), (4.0, 30.0)]), Some(5.0));
        // 10 → 30 (+20), reset to 4 (+4), → 10 (+6): 30 over 10 s.
        assert_eq!(
            event_rate(&[(0.0, 10.0), (5.0, 30.0), (6.0, 4.0), (10.0, 10.0)]),
            Some(3.0)
        );
        // Sparse events over a long quiet window are not inflated.
        let sparse = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (60.0, 2.0)];
        assert_eq!(event_rate(&sparse), Some(2.0 / 60.0));
    }

    #[test]
    fn sampled_rate_follows_the_stair_steps_of_a_sampled_counter() {
        // Sampled every 10 s (at 0, 10, 20, ...), rising 0.5 per sample, observed every 3 s
        // from t = 2: the true rate is 0.05/s.
        let points: Vec<Point> = (0..12)
            .map(|i| {
                let t = 2.0 + 3.0 * f64::from(i);
                (t, 0.5 * (t / 10.0).floor())
            })
            .collect();
        let rate = sampled_rate(&points, 20.0).expect("two changes seen");
        // First change seen at t = 11 (value 0.5), last at t = 32 (value 1.5): 1.0 / 21 s.
        // Observation lag is at most one observation interval at each end.
        assert!((rate - 1.0 / 21.0).abs() < 1e-12, "{rate}");
        assert!((rate - 0.05).abs() / 0.05 < 0.1, "{rate}");
    }

    #[test]
    fn sampled_rate_waits_for_two_changes_unless_the_counter_is_idle() {
        assert_eq!(sampled_rate(&[], 20.0), None);
        assert_eq!(sampled_rate(&[(0.0, 1.0), (5.0, 1.0)], 20.0), None);
        assert_eq!(sampled_rate(&[(0.0, 1.0), (25.0, 1.0)], 20.0), Some(0.0));
        // One change seen: the next sample is still to come, or it is idle since.
        assert_eq!(
            sampled_rate(&[(0.0, 1.0), (5.0, 2.0), (10.0, 2.0)], 20.0),
            None
        );
        assert_eq!(
            sampled_rate(&[(0.0, 1.0), (5.0, 2.0), (30.0, 2.0)], 20.0),
            Some(0.0)
        );
        // It moved, then stopped (a container exited): idle once quiet long enough.
        let stopped = [(0.0, 1.0), (2.0, 2.0), (4.0, 3.0), (10.0, 3.0), (30.0, 3.0)];
        assert_eq!(sampled_rate(&stopped, 20.0), Some(0.0));
        assert_eq!(sampled_rate(&stopped[..4], 20.0), Some(0.5));
    }

    #[test]
    fn sampled_rate_starts_again_after_a_reset() {
        // 100 → 200 then a restart: 3, 5, 7 every 2 s after the reset at t = 10.
        let points = [
            (0.0, 100.0),
            (4.0, 200.0),
            (10.0, 3.0),
            (12.0, 5.0),
            (14.0, 7.0),
        ];
        assert_eq!(sampled_rate(&points, 20.0), Some(1.0));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_promql() {
        // 100 observations: 50 ≤ 10, 40 in (10, 100], 10 in (100, +Inf).
        let buckets = [(10.0, 50.0), (100.0, 90.0), (f64::INFINITY, 100.0)];
        // Rank 50 sits at the top of the first bucket, interpolated from 0.
        assert_eq!(histogram_quantile(0.5, &buckets), Some(10.0));
        // Rank 25: halfway through the first bucket.
        assert_eq!(histogram_quantile(0.25, &buckets), Some(5.0));
        // Rank 70: 20 of the 40 in (10, 100]: 10 + 90 × 0.5.
        assert_eq!(histogram_quantile(0.7, &buckets), Some(55.0));
        // Rank 95 is in +Inf: the highest finite bound.
        assert_eq!(histogram_quantile(0.95, &buckets), Some(100.0));
        // Order does not matter.
        let mut shuffled = buckets;
        shuffled.reverse();
        assert_eq!(histogram_quantile(0.7, &shuffled), Some(55.0));
    }

    #[test]
    fn quantiles_need_observations_and_an_inf_bucket() {
        assert_eq!(histogram_quantile(0.95, &[]), None);
        assert_eq!(histogram_quantile(0.95, &[(10.0, 5.0)]), None);
        assert_eq!(
            histogram_quantile(0.95, &[(10.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.95, &[(10.0, 5.0), (100.0, 5.0)]), None);
    }
}
