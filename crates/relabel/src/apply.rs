//! Relabel rules applied to a label set, step by step as Prometheus' `relabel.Process`.

use crate::config::is_valid_label_name;
use crate::{Action, Labels, RelabelConfig};
use md5::{Digest, Md5};

/// Applies `configs` in order to `labels`. Returns false when a rule drops the label set (and
/// leaves `labels` empty); otherwise `labels` holds the result, sorted, each name once, with no
/// empty value (as soon as one rule applies, as in Prometheus). Whether the result still has a
/// `__name__` is the caller's concern.
pub fn process(labels: &mut Labels, configs: &[RelabelConfig]) -> bool {
    for config in configs {
        if !relabel(labels, config) {
            labels.clear();
            return false;
        }
    }
    true
}

/// Prometheus' hashmod: the last eight bytes of the MD5 of `value` read as a big-endian
/// integer (Go's `sum64` shifts the first eight out of a 64-bit word), modulo `modulus`.
pub fn hash_mod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(low).checked_rem(modulus).unwrap_or(0)
}

/// One rule; false when it drops the label set.
fn relabel(labels: &mut Labels, config: &RelabelConfig) -> bool {
    let mut value = String::new();
    for (i, name) in config.source_labels.iter().enumerate() {
        if i > 0 {
            value.push_str(&config.separator);
        }
        value.push_str(labels.get(name).unwrap_or_default());
    }

    // labelmap reads the label set as it was before the step, empty values included: an
    // empty value copied is a removal of the new name, as Prometheus' builder sets it.
    let mapped: Vec<(String, String)> = if config.action == Action::LabelMap {
        labels
            .iter()
            .filter_map(|(name, value)| {
                let new_name = config.regex.expand_match(name, &config.replacement)?;
                Some((new_name, value.to_owned()))
            })
            .collect()
    } else {
        Vec::new()
    };
    // Prometheus' builder removes empty values whenever a rule applies.
    labels.retain(|_, value| !value.is_empty());

    match config.action {
        Action::Drop => {
            if config.regex.is_match(&value) {
                return false;
            }
        }
        Action::Keep => {
            if !config.regex.is_match(&value) {
                return false;
            }
        }
        Action::DropEqual => {
            if labels.get(&config.target_label).unwrap_or_default() == value {
                return false;
            }
        }
        Action::KeepEqual => {
            if labels.get(&config.target_label).unwrap_or_default() != value {
                return false;
            }
        }
        Action::Replace => replace(labels, config, &value),
        Action::Lowercase => labels.set(&config.target_label, &go_lowercase(&value)),
        Action::Uppercase => labels.set(&config.target_label, &go_uppercase(&value)),
        Action::HashMod => {
            let hash = hash_mod(&value, config.modulus);
            labels.set(&config.target_label, &hash.to_string());
        }
        Action::LabelMap => {
            for (name, value) in &mapped {
                labels.set(name, value);
            }
        }
        Action::LabelDrop => labels.retain(|name, _| !config.regex.is_match(name)),
        Action::LabelKeep => labels.retain(|name, _| config.regex.is_match(name)),
    }
    true
}

/// `replace`: nothing when the regex does not match; when the expanded target is not a valid
/// label name, or the expanded replacement is empty, Prometheus removes the label named by the
/// target as written (unexpanded), and so does this.
fn replace(labels: &mut Labels, config: &RelabelConfig, value: &str) {
    let Some(captures) = config.regex.captures(value) else {
        return;
    };
    let target = config.regex.expand(&config.target_label, &captures);
    if !is_valid_label_name(&target) {
        labels.remove(&config.target_label);
        return;
    }
    let result = config.regex.expand(&config.replacement, &captures);
    if result.is_empty() {
        labels.remove(&config.target_label);
        return;
    }
    labels.set(&target, &result);
}

/// Go's `strings.ToLower`: each character's simple lower-case mapping (one character for one).
fn go_lowercase(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(single), None) => single,
                // The only character with a longer full mapping is U+0130, whose simple
                // mapping is its first character.
                (Some(first), Some(_)) => first,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each character's simple upper-case mapping; a character whose only
/// upper case is several characters (`ß`, ligatures) stays as it is, as it has no simple one.
fn go_uppercase(text: &str) -> String {
    text.chars()
        .map(|c| {
            if let Some(title) = greek_iota_subscript_upper(c) {
                return title;
            }
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                _ => c,
            }
        })
        .collect()
}

/// The Greek letters with iota subscript, the only characters whose full upper case is several
/// characters while their simple one (what Go uses) is a single titlecase letter.
fn greek_iota_subscript_upper(c: char) -> Option<char> {
    let code = u32::from(c);
    let upper = match code {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
        0x1FB3 | 0x1FC3 | 0x1FF3 => code + 9,
        _ => return None,
    };
    char::from_u32(upper)
}
