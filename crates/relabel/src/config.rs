//! `relabel_config` as Prometheus reads it: field names, defaults, and the checks Prometheus
//! makes when it loads the configuration.

use crate::{Pattern, RelabelError};
use regex::Regex;
use serde::{Deserialize, Deserializer};
use std::sync::LazyLock;

/// What a relabel rule does (`action`, case-insensitive as in Prometheus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Writes the expanded `replacement` to the expanded `target_label` when `regex` matches.
    Replace,
    /// Drops the label set unless `regex` matches the joined source values.
    Keep,
    /// Drops the label set when `regex` matches the joined source values.
    Drop,
    /// Drops the label set unless the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drops the label set when the joined source values equal `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to the MD5 of the joined source values modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the name `replacement` expands to.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined source values in lower case.
    Lowercase,
    /// Sets `target_label` to the joined source values in upper case.
    Uppercase,
}

impl Action {
    /// The name Prometheus gives the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        Some(match text.to_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

/// One `relabel_config`, checked: everything Prometheus refuses at load is refused here, so
/// applying it cannot fail. Read it from YAML with serde (it embeds in a larger configuration)
/// or with [`parse_relabel_configs`].
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct RelabelConfig {
    pub(crate) source_labels: Vec<String>,
    pub(crate) separator: String,
    pub(crate) target_label: String,
    pub(crate) regex: Pattern,
    pub(crate) modulus: u64,
    pub(crate) replacement: String,
    pub(crate) action: Action,
}

impl RelabelConfig {
    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The source labels, in order (`[]` by default).
    pub fn source_labels(&self) -> &[String] {
        &self.source_labels
    }

    /// The separator between source values (`;` by default).
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The target label as written, before any `$` expansion (empty by default).
    pub fn target_label(&self) -> &str {
        &self.target_label
    }

    /// The regex as written, without Prometheus' anchors (`(.*)` by default).
    pub fn regex(&self) -> &str {
        self.regex.as_str()
    }

    /// The modulus of `hashmod` (0 when not set).
    pub fn modulus(&self) -> u64 {
        self.modulus
    }

    /// The replacement template (`$1` by default).
    pub fn replacement(&self) -> &str {
        &self.replacement
    }
}

/// A list of `relabel_config` entries from YAML text (a sequence, as under
/// `relabel_configs:`), unknown fields refused; an empty text is an empty list.
pub fn parse_relabel_configs(yaml: &str) -> Result<Vec<RelabelConfig>, RelabelError> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let configs: Option<Vec<RelabelConfig>> = serde_saphyr::from_str_with_options(yaml, options)
        .map_err(|source| RelabelError::Parse {
            source: Box::new(source),
        })?;
    Ok(configs.unwrap_or_default())
}

/// The fields as written: `None` when absent, so that the checks can tell a default from a
/// value given explicitly, as Prometheus' do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    separator: Option<String>,
    #[serde(default, deserialize_with = "present")]
    target_label: Option<String>,
    #[serde(default, deserialize_with = "present")]
    regex: Option<String>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    replacement: Option<String>,
    #[serde(default, deserialize_with = "present")]
    action: Option<String>,
}

/// A field that is present: a YAML null reads as the empty string, as Go's YAML reader sets a
/// null field to its zero value.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(
        Option::<String>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// What Prometheus accepts as a `target_label` (and a `labelmap` replacement) before expansion.
// A fixed pattern, compiled by the tests: it cannot fail at run time.
#[allow(clippy::expect_used)]
static RELABEL_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
        .expect("a fixed pattern that compiles (tested)")
});

/// A label name as Prometheus 2 accepts it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

impl TryFrom<RawConfig> for RelabelConfig {
    type Error = RelabelError;

    fn try_from(raw: RawConfig) -> Result<RelabelConfig, RelabelError> {
        let invalid = |text: String| Err(RelabelError::Invalid(text));
        let action = match raw.action.as_deref() {
            None => Action::Replace,
            Some("") => return invalid("relabel action cannot be empty".to_owned()),
            Some(text) => match Action::parse(text) {
                Some(action) => action,
                None => return invalid(format!("unknown relabel action {text:?}")),
            },
        };
        if let Some(name) = raw
            .source_labels
            .iter()
            .flatten()
            .find(|name| !is_valid_label_name(name))
        {
            return invalid(format!("{name:?} is not a valid label name"));
        }
        let regex = Pattern::new(raw.regex.as_deref().unwrap_or(DEFAULT_REGEX))?;
        let config = RelabelConfig {
            source_labels: raw.source_labels.clone().unwrap_or_default(),
            separator: raw
                .separator
                .clone()
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned()),
            target_label: raw.target_label.clone().unwrap_or_default(),
            regex,
            modulus: raw.modulus.unwrap_or(0),
            replacement: raw
                .replacement
                .clone()
                .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_owned()),
            action,
        };
        let name = action.as_str();
        use Action::*;
        if config.modulus == 0 && action == HashMod {
            return invalid(
                "relabel configuration for hashmod requires non-zero modulus".to_owned(),
            );
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && config.target_label.is_empty() {
            return invalid(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        let templated_target = matches!(
            action,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if templated_target && !RELABEL_TARGET.is_match(&config.target_label) {
            return invalid(format!(
                "{:?} is invalid 'target_label' for {name} action",
                config.target_label
            ));
        }
        let fixed_replacement = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if fixed_replacement && config.replacement != DEFAULT_REPLACEMENT {
            return invalid(format!("'replacement' can not be set for {name} action"));
        }
        if action == LabelMap && !RELABEL_TARGET.is_match(&config.replacement) {
            return invalid(format!(
                "{:?} is invalid 'replacement' for {name} action",
                config.replacement
            ));
        }
        if action == HashMod && !is_valid_label_name(&config.target_label) {
            return invalid(format!(
                "{:?} is invalid 'target_label' for {name} action",
                config.target_label
            ));
        }
        // Prometheus compares the compiled regex with the default one by identity, so any
        // `regex` given, even `(.*)`, counts as set.
        if matches!(action, KeepEqual | DropEqual)
            && (raw.regex.is_some()
                || config.modulus != 0
                || config.separator != DEFAULT_SEPARATOR
                || config.replacement != DEFAULT_REPLACEMENT)
        {
            return invalid(format!(
                "{name} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (raw.source_labels.is_some()
                || !config.target_label.is_empty()
                || config.modulus != 0
                || config.separator != DEFAULT_SEPARATOR
                || config.replacement != DEFAULT_REPLACEMENT)
        {
            return invalid(format!(
                "{name} action requires only 'regex', and no other fields"
            ));
        }
        Ok(config)
    }
}
