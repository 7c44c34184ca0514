//! Properties over any configuration and any label set: loading ends in a configuration or an
//! error, and applying never panics and always leaves a sorted set with each name once and no
//! empty value.

use proptest::prelude::*;
use relabel::{Labels, parse_relabel_configs, process};

const ACTIONS: &[&str] = &[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "Replace",
    "LABELMAP",
];
const NAMES: &[&str] = &[
    "a", "b", "__name__", "job", "__tmp", "x_1", "instance", "é", "", "1a",
];
const REGEXES: &[&str] = &[
    "(.*)",
    "",
    "a|b",
    "(a)(b)?",
    "(?P<n>.+)_(.*)",
    r"\d+",
    r"\w*\b.",
    "[[:upper:]]+",
    "[[]",
    r"\Q.*\E",
    "a{",
    "(?i)A.*",
    "[^]a]*",
    "(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)",
    "(?s).",
    "$^",
    "((((a*)*)*)*)",
    ".{0,3}",
];
const TEMPLATES: &[&str] = &[
    "$1",
    "${1}",
    "$1x",
    "$$",
    "$",
    "${",
    "${n}",
    "$n",
    "$0",
    "$11",
    "x_${2}",
    "a",
    "",
    "${1}_$2",
    "$99999999999",
    "${é}",
];

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One `relabel_config` as YAML: each field present or not, from pools that mix valid and
/// invalid values, with arbitrary text mixed in.
fn config() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::collection::vec(prop::sample::select(NAMES), 0..3)),
        prop::option::of(prop_oneof![Just(";".to_owned()), ".{0,2}"]),
        prop::option::of(prop_oneof![
            prop::sample::select(TEMPLATES).prop_map(str::to_owned),
            prop::sample::select(NAMES).prop_map(str::to_owned)
        ]),
        prop::option::of(prop_oneof![
            prop::sample::select(REGEXES).prop_map(str::to_owned),
            ".{0,8}"
        ]),
        prop::option::of(prop_oneof![1u64..10, Just(u64::MAX), Just(0u64)]),
        prop::option::of(prop_oneof![
            prop::sample::select(TEMPLATES).prop_map(str::to_owned),
            ".{0,6}"
        ]),
        prop::option::of(prop::sample::select(ACTIONS)),
    )
        .prop_map(
            |(sources, separator, target, regex, modulus, replacement, action)| {
                let mut yaml = String::from("- {");
                if let Some(sources) = sources {
                    let names: Vec<String> = sources.iter().map(|n| quoted(n)).collect();
                    yaml.push_str(&format!("source_labels: [{}], ", names.join(", ")));
                }
                for (field, value) in [
                    ("separator", separator),
                    ("target_label", target),
                    ("regex", regex),
                    ("replacement", replacement),
                ] {
                    if let Some(value) = value {
                        yaml.push_str(&format!("{field}: {}, ", quoted(&value)));
                    }
                }
                if let Some(modulus) = modulus {
                    yaml.push_str(&format!("modulus: {modulus}, "));
                }
                if let Some(action) = action {
                    yaml.push_str(&format!("action: {action}, "));
                }
                yaml.push_str("}\n");
                yaml
            },
        )
}

fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                prop::sample::select(NAMES).prop_map(str::to_owned),
                "[a-z_]{1,3}"
            ],
            prop_oneof![Just(String::new()), "[a-b;_]{0,3}", ".{0,4}"],
        ),
        0..8,
    )
}

fn check(labels: &Labels, kept: bool) -> Result<(), TestCaseError> {
    let slice = labels.as_slice();
    prop_assert!(
        slice.windows(2).all(|w| w[0].0 < w[1].0),
        "not sorted and unique: {labels:?}"
    );
    prop_assert!(
        slice.iter().all(|(_, v)| !v.is_empty()),
        "an empty value: {labels:?}"
    );
    if !kept {
        prop_assert!(labels.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_configuration_on_any_labels(
        configs in prop::collection::vec(config(), 1..5),
        pairs in label_set(),
    ) {
        let mut accepted = Vec::new();
        for yaml in &configs {
            if let Ok(mut config) = parse_relabel_configs(yaml) {
                accepted.append(&mut config);
            }
        }
        prop_assume!(!accepted.is_empty());
        let mut labels = Labels::from_pairs(pairs);
        let kept = process(&mut labels, &accepted);
        check(&labels, kept)?;
        // Each rule applied alone keeps the invariants too.
        for config in &accepted {
            let mut again = labels.clone();
            let kept = process(&mut again, std::slice::from_ref(config));
            check(&again, kept)?;
        }
    }

    #[test]
    fn any_text_loads_or_is_refused(text in "(- |  |\\{|\\}|\\[|\\]|: |,|\\n|source_labels|regex|action|labelmap|hashmod|modulus|target_label|replacement|[a-z$(){}.*\\\\]){0,40}") {
        let _ = parse_relabel_configs(&text);
    }

    #[test]
    fn any_regex_compiles_or_is_refused(pattern in ".{0,12}", text in ".{0,8}") {
        let yaml = format!("- {{source_labels: [a], regex: {}, target_label: b, replacement: '$1$2${{x}}'}}\n", quoted(&pattern));
        if let Ok(configs) = parse_relabel_configs(&yaml) {
            let mut labels = Labels::from_pairs([("a", text.as_str())]);
            prop_assert!(process(&mut labels, &configs));
            check(&labels, true)?;
        }
    }
}
