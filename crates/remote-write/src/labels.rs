//! Samples as the queue stores and the sender sends them: a label set sorted by name with
//! unique, non-empty names, a millisecond timestamp and a value whose bits are kept exactly
//! (the stale marker is one particular NaN).

use crate::error::Error;
use std::sync::Arc;

/// The bits of Prometheus' stale marker, a NaN no arithmetic produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker: a sample with this value ends its series.
pub fn stale_marker() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `value` is the stale marker (compared by bits: every NaN is unequal to itself).
pub fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The name, never empty.
    pub name: String,
    /// The value, never empty.
    pub value: String,
}

/// A label set sorted by name, names unique and non-empty, values non-empty. Shared, so that
/// the many copies a series' samples carry through the queue and the sender cost no
/// allocation, and hashed once, so that grouping samples by series does not hash every label
/// of every sample again.
#[derive(Clone)]
pub struct Labels {
    labels: Arc<[Label]>,
    /// FNV-1a of the names and values, each followed by 0xff: stable across processes.
    hash: u64,
}

fn fnv1a(labels: &[Label]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for label in labels {
        feed(label.name.as_bytes());
        feed(&[0xff]);
        feed(label.value.as_bytes());
        feed(&[0xff]);
    }
    hash
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Labels").field(&self.labels).finish()
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::from_sorted(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.labels, &other.labels)
            || (self.hash == other.hash && self.labels == other.labels)
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.labels.cmp(&other.labels)
    }
}

impl Labels {
    /// The label set of `pairs`, sorted by name. A label with an empty value is left out, as
    /// Prometheus treats it as absent; an empty name or a name given twice is an error.
    pub fn new<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Labels, Error>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(name, value)| Label {
                name: name.into(),
                value: value.into(),
            })
            .filter(|label| !label.value.is_empty())
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        if labels.iter().any(|label| label.name.is_empty()) {
            return Err(Error::InvalidLabels {
                reason: "a label has an empty name".into(),
            });
        }
        if let Some(pair) = labels.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(Error::InvalidLabels {
                reason: format!("label {:?} is given twice", pair[0].name),
            });
        }
        Ok(Labels::from_sorted(labels))
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.labels
    }

    /// The stable hash of the set (FNV-1a), worked out once.
    pub fn stable_hash(&self) -> u64 {
        self.hash
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|label| label.name.as_str().cmp(name))
            .ok()
            .map(|index| self.labels[index].value.as_str())
    }

    /// Built from labels already known to be sorted, unique and non-empty (read back from the
    /// queue, which only ever stores checked sets).
    pub(crate) fn from_sorted(labels: Vec<Label>) -> Labels {
        let hash = fnv1a(&labels);
        Labels {
            labels: labels.into(),
            hash,
        }
    }
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series.
    pub labels: Labels,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The value; its bits are kept exactly, the stale marker included.
    pub value: f64,
}

impl Sample {
    /// Whether the two samples are the same, comparing values by their bits.
    pub fn same_as(&self, other: &Sample) -> bool {
        self.labels == other.labels
            && self.timestamp_ms == other.timestamp_ms
            && self.value.to_bits() == other.value.to_bits()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn labels_are_sorted_empty_values_left_out_and_duplicates_refused() {
        let labels = Labels::new([("job", "a"), ("__name__", "up"), ("empty", "")]).unwrap();
        let names: Vec<&str> = labels.as_slice().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(labels.get("job"), Some("a"));
        assert_eq!(labels.get("empty"), None);
        assert!(Labels::new([("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::new([("", "1")]).is_err());
    }

    #[test]
    fn the_stale_marker_is_told_apart_from_other_nans() {
        assert!(is_stale_marker(stale_marker()));
        assert!(!is_stale_marker(f64::NAN));
        assert_eq!(stale_marker().to_bits(), 0x7ff0_0000_0000_0002);
    }
}
