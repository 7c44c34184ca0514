//! Each action, and each check made at load, on the cases Prometheus' own relabeling tests
//! cover, written again as YAML and label sets.

use relabel::{
    Action, Labels, RelabelConfig, RelabelError, hash_mod, parse_relabel_configs, process,
};

fn configs(yaml: &str) -> Vec<RelabelConfig> {
    parse_relabel_configs(yaml).unwrap_or_else(|e| panic!("{yaml}: {}", chain(&e)))
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// The result of `yaml` on `input`, `None` when dropped.
fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
    let mut set = labels(input);
    process(&mut set, &configs(yaml)).then_some(set)
}

fn refused(yaml: &str) -> String {
    match parse_relabel_configs(yaml) {
        Ok(configs) => panic!("{yaml} accepted: {configs:?}"),
        Err(error) => chain(&error),
    }
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

#[test]
fn defaults_are_prometheus_defaults() {
    let config = &configs("- target_label: x\n")[0];
    assert_eq!(config.action(), Action::Replace);
    assert_eq!(config.source_labels(), &[] as &[String]);
    assert_eq!(config.separator(), ";");
    assert_eq!(config.regex(), "(.*)");
    assert_eq!(config.replacement(), "$1");
    assert_eq!(config.modulus(), 0);
    assert_eq!(config.target_label(), "x");
}

#[test]
fn replace_expands_groups_into_the_target() {
    let yaml =
        "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}\n";
    assert_eq!(
        run(yaml, ABC),
        Some(labels(&[
            ("a", "foo"),
            ("b", "bar"),
            ("c", "baz"),
            ("d", "choo-choo")
        ]))
    );
    // `$1-` is group 1 then `-`: the name stops at the first character that is not a letter,
    // digit or underscore.
    let yaml =
        "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch$1-ch$1\n";
    assert_eq!(run(yaml, ABC).unwrap().get("d"), Some("choo-choo"));
    // `$1x` is the group named `1x`, which does not exist: empty, so nothing is written.
    let yaml = "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: $1x\n";
    assert_eq!(run(yaml, ABC), Some(labels(ABC)));
}

#[test]
fn replace_joins_source_values_with_the_separator() {
    let yaml = "- source_labels: [a, b]\n  regex: f(.*);(.*)r\n  target_label: a\n  replacement: b${1}${2}m\n";
    assert_eq!(
        run(yaml, ABC),
        Some(labels(&[("a", "boobam"), ("b", "bar"), ("c", "baz")]))
    );
    let yaml = "- source_labels: [c, a, missing]\n  separator: '|'\n  target_label: d\n";
    assert_eq!(run(yaml, ABC).unwrap().get("d"), Some("baz|foo|"));
}

#[test]
fn replace_chains_in_order() {
    let yaml = "\
- source_labels: [a]
  regex: f(.*)
  target_label: d
  replacement: ch$1-ch$1
- source_labels: [b]
  regex: ba(.*)
  target_label: e
  replacement: $1
- source_labels: [d, e]
  regex: (.*);(.*)
  target_label: f
  replacement: $2+$1
";
    let out = run(yaml, ABC).unwrap();
    assert_eq!(out.get("f"), Some("r+choo-choo"));
}

#[test]
fn replace_without_match_changes_nothing() {
    let yaml = "- source_labels: [a]\n  regex: (f).*\n  target_label: d\n  replacement: $1\n";
    assert_eq!(run(yaml, &[("a", "boo")]), Some(labels(&[("a", "boo")])));
    // Anchored: `o` does not match inside `foo`.
    let yaml = "- source_labels: [a]\n  regex: o\n  target_label: d\n  replacement: x\n";
    assert_eq!(run(yaml, ABC), Some(labels(ABC)));
}

#[test]
fn replace_with_an_empty_result_removes_the_target() {
    let yaml = "- source_labels: [a]\n  regex: (f).*\n  target_label: b\n  replacement: $2\n";
    assert_eq!(run(yaml, ABC), Some(labels(&[("a", "foo"), ("c", "baz")])));
}

#[test]
fn replace_writes_to_an_expanded_target_name() {
    let yaml = "- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  target_label: ${1}\n  replacement: ${2}\n";
    assert_eq!(
        run(yaml, &[("a", "some-name-value")]),
        Some(labels(&[("a", "some-name-value"), ("name", "value")]))
    );
    // A target that is not a label name after expansion is skipped.
    assert_eq!(
        run(yaml, &[("a", "some-0nvalid-value")]),
        Some(labels(&[("a", "some-0nvalid-value")]))
    );
    assert_eq!(
        run(yaml, &[("a", "some-in.valid-value")]),
        Some(labels(&[("a", "some-in.valid-value")]))
    );
}

#[test]
fn replace_without_source_sets_a_constant() {
    let yaml = "- target_label: env\n  replacement: prod\n";
    assert_eq!(run(yaml, &[]), Some(labels(&[("env", "prod")])));
    let yaml = "- target_label: x\n  replacement: $$1 and $\n";
    assert_eq!(run(yaml, &[]).unwrap().get("x"), Some("$1 and $"));
}

#[test]
fn drop_and_keep() {
    let drop = "- source_labels: [a]\n  regex: .*o.*\n  action: drop\n";
    assert_eq!(run(drop, ABC), None);
    let drop = "- source_labels: [a]\n  regex: f\n  action: drop\n";
    assert_eq!(run(drop, ABC), Some(labels(ABC)));
    let keep = "- source_labels: [a]\n  regex: no-match\n  action: keep\n";
    assert_eq!(run(keep, ABC), None);
    let keep = "- source_labels: [a]\n  regex: f.*\n  action: keep\n";
    assert_eq!(run(keep, ABC), Some(labels(ABC)));
    // Missing source labels are empty values; the default regex matches them.
    let keep = "- source_labels: [missing]\n  regex: .+\n  action: keep\n";
    assert_eq!(run(keep, ABC), None);
    // A dropped set is left empty.
    let mut set = labels(ABC);
    assert!(!process(
        &mut set,
        &configs("- source_labels: [a]\n  action: drop\n")
    ));
    assert!(set.is_empty());
}

#[test]
fn keepequal_and_dropequal_compare_with_the_target() {
    let input = &[
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];
    let keep = |source: &str| {
        format!("- source_labels: [{source}]\n  target_label: __tmp_port\n  action: keepequal\n")
    };
    let drop = |source: &str| {
        format!("- source_labels: [{source}]\n  target_label: __tmp_port\n  action: dropequal\n")
    };
    assert_eq!(run(&keep("__port1"), input), Some(labels(input)));
    assert_eq!(run(&keep("__port2"), input), None);
    assert_eq!(run(&drop("__port1"), input), None);
    assert_eq!(run(&drop("__port2"), input), Some(labels(input)));
    // A missing target is the empty value.
    assert_eq!(
        run(&keep("missing"), &[("a", "b")]),
        Some(labels(&[("a", "b")]))
    );
}

#[test]
fn hashmod_is_prometheus_hash() {
    let yaml = "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n";
    assert_eq!(run(yaml, ABC).unwrap().get("d"), Some("976"));
    // The low eight bytes of the MD5: Go's sum64 shifts the high ones out of its word.
    // MD5("baz") = 73feffa4b7f6bb68 e44cf984c85f6e88; the high half would give 48.
    assert_eq!(hash_mod("baz", 1000), 976);
    // MD5("") = d41d8cd98f00b204 e9800998ecf8427e.
    assert_eq!(hash_mod("", u64::MAX), 0xe980_0998_ecf8_427e);
}

#[test]
fn labelmap_copies_matching_names() {
    let input = &[("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    let yaml = "- regex: (b.*)\n  replacement: bar_${1}\n  action: labelmap\n";
    assert_eq!(
        run(yaml, input),
        Some(labels(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz"),
        ]))
    );
    let input = &[
        ("__meta_my_bar", "aaa"),
        ("__meta_my_baz", "bbb"),
        ("__meta_other", "ccc"),
    ];
    let yaml = "- regex: __meta_(my.*)\n  replacement: ${1}\n  action: labelmap\n";
    assert_eq!(
        run(yaml, input),
        Some(labels(&[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]))
    );
}

#[test]
fn labeldrop_and_labelkeep() {
    let input = &[("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    assert_eq!(
        run("- regex: (b.*)\n  action: labeldrop\n", input),
        Some(labels(&[("a", "foo")]))
    );
    assert_eq!(
        run("- regex: (b.*)\n  action: labelkeep\n", input),
        Some(labels(&[("b1", "bar"), ("b2", "baz")]))
    );
    assert_eq!(
        run("- regex: b\n  action: labeldrop\n", input),
        Some(labels(input))
    );
}

#[test]
fn lowercase_and_uppercase() {
    let input = &[("foo", "bAr123Foo")];
    let yaml = "\
- source_labels: [foo]
  target_label: foo_lower
  action: lowercase
- source_labels: [foo]
  target_label: foo_upper
  action: uppercase
";
    assert_eq!(
        run(yaml, input),
        Some(labels(&[
            ("foo", "bAr123Foo"),
            ("foo_lower", "bar123foo"),
            ("foo_upper", "BAR123FOO"),
        ]))
    );
    // One character for one, as Go's simple case mappings.
    let input = &[("v", "İß ﬀ ǅ ᾳ ᾀ ῳ")];
    let yaml = "\
- source_labels: [v]
  target_label: l
  action: lowercase
- source_labels: [v]
  target_label: u
  action: uppercase
";
    let out = run(yaml, input).unwrap();
    assert_eq!(out.get("l"), Some("iß ﬀ ǆ ᾳ ᾀ ῳ"));
    assert_eq!(out.get("u"), Some("İß ﬀ Ǆ ᾼ ᾈ ῼ"));
}

#[test]
fn empty_values_are_removed_once_a_rule_applies() {
    let input = &[("a", ""), ("b", "x")];
    assert_eq!(
        run("- source_labels: [b]\n  action: keep\n", input),
        Some(labels(&[("b", "x")]))
    );
    let mut untouched = labels(input);
    assert!(process(&mut untouched, &[]));
    assert_eq!(untouched, labels(input));
}

#[test]
fn action_names_are_case_insensitive() {
    assert_eq!(
        configs("- action: LabelDrop\n  regex: x\n")[0].action(),
        Action::LabelDrop
    );
    assert_eq!(configs("- action: KEEP\n")[0].action(), Action::Keep);
}

#[test]
fn yaml_nulls_and_scalars_read_as_go_reads_them() {
    // A null regex is the empty regex.
    let keep = "- source_labels: [a]\n  regex:\n  action: keep\n";
    assert_eq!(run(keep, ABC), None);
    assert_eq!(run(keep, &[("b", "x")]), Some(labels(&[("b", "x")])));
    // A null separator is the empty separator.
    let yaml = "- source_labels: [a, b]\n  separator:\n  target_label: d\n";
    assert_eq!(run(yaml, ABC).unwrap().get("d"), Some("foobar"));
    assert_eq!(configs("")[..].len(), 0);
}

#[test]
fn load_refuses_what_prometheus_refuses() {
    let cases = [
        (
            "- action: hashmod\n  target_label: x\n",
            "requires non-zero modulus",
        ),
        (
            "- action: hashmod\n  modulus: 2\n",
            "hashmod action requires 'target_label'",
        ),
        (
            "- action: hashmod\n  modulus: 2\n  target_label: ${1}\n",
            "invalid 'target_label' for hashmod",
        ),
        (
            "- action: replace\n",
            "replace action requires 'target_label'",
        ),
        (
            "- source_labels: [a]\n",
            "replace action requires 'target_label'",
        ),
        (
            "- action: lowercase\n",
            "lowercase action requires 'target_label'",
        ),
        (
            "- action: uppercase\n",
            "uppercase action requires 'target_label'",
        ),
        (
            "- action: keepequal\n",
            "keepequal action requires 'target_label'",
        ),
        (
            "- action: dropequal\n",
            "dropequal action requires 'target_label'",
        ),
        (
            "- target_label: 1abc\n",
            "\"1abc\" is invalid 'target_label' for replace",
        ),
        (
            "- target_label: a-b\n",
            "invalid 'target_label' for replace",
        ),
        (
            "- action: lowercase\n  target_label: x\n  replacement: y\n",
            "'replacement' can not be set for lowercase",
        ),
        (
            "- action: uppercase\n  target_label: x\n  replacement: y\n",
            "'replacement' can not be set for uppercase",
        ),
        (
            "- action: labelmap\n  replacement: a-b\n",
            "\"a-b\" is invalid 'replacement' for labelmap",
        ),
        (
            "- action: keepequal\n  target_label: x\n  regex: (.*)\n",
            "keepequal action requires only 'source_labels' and `target_label`",
        ),
        (
            "- action: dropequal\n  target_label: x\n  separator: ','\n",
            "dropequal action requires only",
        ),
        (
            "- action: keepequal\n  target_label: x\n  modulus: 3\n",
            "keepequal action requires only",
        ),
        (
            "- action: labeldrop\n  source_labels: [a]\n",
            "labeldrop action requires only 'regex'",
        ),
        (
            "- action: labelkeep\n  target_label: a\n",
            "labelkeep action requires only 'regex'",
        ),
        (
            "- action: labelkeep\n  replacement: a\n",
            "labelkeep action requires only 'regex'",
        ),
        (
            "- action: labeldrop\n  separator: ','\n",
            "labeldrop action requires only 'regex'",
        ),
        ("- action: unknown\n", "unknown relabel action \"unknown\""),
        ("- action: ''\n", "relabel action cannot be empty"),
        (
            "- source_labels: [a-b]\n  target_label: x\n",
            "\"a-b\" is not a valid label name",
        ),
        ("- target_label: x\n  regexp: a\n", "regexp"),
        (
            "- action: hashmod\n  target_label: x\n  modulus: -1\n",
            "invalid u64 at line 3",
        ),
    ];
    for (yaml, expected) in cases {
        let error = refused(yaml);
        assert!(error.contains(expected), "{yaml}: {error}");
    }
    // What Prometheus accepts around those checks.
    configs("- action: keepequal\n  target_label: x\n  separator: ';'\n  replacement: $1\n");
    configs("- action: labeldrop\n  regex: a\n  separator: ';'\n  target_label: ''\n");
    configs("- action: labelmap\n  regex: (.*)\n  replacement: x_${1}_$1\n");
    configs("- target_label: ${1}_x\n");
}

#[test]
fn regexes_go_cannot_compile_are_refused_by_name() {
    for pattern in [
        "(?=x)", "(?!x)", "(?<=x)y", "(?<!x)y", r"(a)\1", "(", "x{2,1}",
    ] {
        let yaml = format!("- source_labels: [a]\n  regex: '{pattern}'\n  action: keep\n");
        let error = refused(&yaml);
        assert!(
            error.contains(&format!("invalid regex {pattern:?}")),
            "{yaml}: {error}"
        );
        assert!(matches!(
            parse_relabel_configs(&yaml),
            Err(RelabelError::Parse { .. })
        ));
    }
}

#[test]
fn non_string_scalars_are_their_text() {
    let yaml = "- source_labels: [code]\n  regex: 200\n  action: keep\n";
    assert_eq!(
        run(yaml, &[("code", "200")]),
        Some(labels(&[("code", "200")]))
    );
    let yaml = "- target_label: x\n  replacement: 1\n";
    assert_eq!(run(yaml, &[]).unwrap().get("x"), Some("1"));
}
