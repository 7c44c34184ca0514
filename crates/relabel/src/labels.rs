//! A label set: names sorted and unique, as relabeling reads and leaves it.

/// A label set, sorted by name with each name once. Values may be empty until relabeling
/// applies a rule, which removes empty values as Prometheus' label builder does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// An empty label set.
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    /// The label set of `pairs`; where a name repeats, the last value wins.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Labels
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        // A stable sort keeps repeats in input order, so keeping the last of each run keeps
        // the last value given.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for label in labels {
            match unique.last_mut() {
                Some(last) if last.0 == label.0 => *last = label,
                _ => unique.push(label),
            }
        }
        Labels(unique)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .map(|index| self.0[index].1.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label, as in Prometheus.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.remove(name);
            return;
        }
        match self.position(name) {
            Ok(index) => value.clone_into(&mut self.0[index].1),
            Err(index) => self.0.insert(index, (name.to_owned(), value.to_owned())),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(index) = self.position(name) {
            self.0.remove(index);
        }
    }

    /// Keeps the labels for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(name, value)| keep(name, value));
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The labels in name order.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// The labels in name order, as owned pairs.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every label.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Labels {
        Labels::from_pairs(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_last_value_wins() {
        let labels = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(
            labels.as_slice(),
            &[("a".into(), "2".into()), ("b".into(), "3".into())]
        );
    }

    #[test]
    fn set_empty_removes() {
        let mut labels = Labels::from_pairs([("a", "1"), ("c", "2")]);
        labels.set("b", "x");
        labels.set("c", "");
        labels.set("a", "y");
        assert_eq!(
            labels.as_slice(),
            &[("a".into(), "y".into()), ("b".into(), "x".into())]
        );
        assert_eq!(labels.get("b"), Some("x"));
        assert_eq!(labels.get("c"), None);
    }
}
