//! Loading refuses exactly what Prometheus refuses: each relabel_config here is checked by
//! Debian's `promtool check config` (2.42) and by this crate, and both must agree.

use relabel::parse_relabel_configs;
use std::process::{Command, Stdio};

/// Entries of `relabel_configs`, each alone; valid and invalid on purpose.
const CASES: &[&str] = &[
    "{target_label: x}",
    "{}",
    "{action: REPLACE, target_label: x}",
    "{action: '', target_label: x}",
    "{action: bogus}",
    "{action: keep}",
    "{action: keep, regex: null}",
    "{action: keep, regex: ''}",
    "{target_label: x, separator: null}",
    "{target_label: '$1x'}",
    "{target_label: '${1}_a'}",
    "{target_label: 'a$'}",
    "{target_label: '${1'}",
    "{target_label: '1a'}",
    "{target_label: 'a.b'}",
    "{source_labels: [a-b], target_label: x}",
    "{source_labels: [__a, b1], target_label: x}",
    "{action: hashmod, target_label: x}",
    "{action: hashmod, target_label: x, modulus: 0}",
    "{action: hashmod, target_label: x, modulus: 3}",
    "{action: hashmod, target_label: '${1}', modulus: 3}",
    "{action: hashmod, modulus: 3}",
    "{action: lowercase, target_label: x}",
    "{action: lowercase, target_label: x, replacement: ''}",
    "{action: uppercase, target_label: x, replacement: '$1'}",
    "{action: uppercase}",
    "{action: keepequal, target_label: x}",
    "{action: keepequal, target_label: x, regex: '(.*)'}",
    "{action: keepequal, target_label: x, separator: ';'}",
    "{action: dropequal, target_label: x, separator: ','}",
    "{action: dropequal, target_label: x, replacement: 'y'}",
    "{action: dropequal, target_label: '$1'}",
    "{action: labelmap}",
    "{action: labelmap, replacement: 'a-$1'}",
    "{action: labelmap, replacement: 'x_${1}'}",
    "{action: labelmap, replacement: ''}",
    "{action: labeldrop, regex: a}",
    "{action: labeldrop, source_labels: []}",
    "{action: labeldrop, regex: a, source_labels: null}",
    "{action: labelkeep, target_label: ''}",
    "{action: labelkeep, target_label: x}",
    "{action: labelkeep, separator: ','}",
    "{action: labelkeep, modulus: 2}",
    "{action: keep, regex: '(?=a)'}",
    "{action: keep, regex: '(?<!a)b'}",
    "{action: keep, regex: '(a)\\1'}",
    "{action: keep, regex: '('}",
    "{action: keep, regex: 'a{'}",
    "{action: keep, regex: 'a{2,1}'}",
    "{action: keep, regex: '[[]'}",
    "{action: keep, regex: '\\Q(\\E'}",
    "{action: keep, regex: '\\<'}",
    "{action: keep, regex: '\\x{3A3}\\pL\\p{Greek}'}",
    "{action: keep, regex: '(?P<n>a)'}",
    "{action: keep, regex: 'a**'}",
    "{action: keep, regex: 'a++'}",
    "{action: keep, regex: 'a*?'}",
    "{action: keep, regex: 'a*??'}",
    "{action: keep, regex: 'a{2}{3}'}",
    "{action: keep, regex: 'a{01}'}",
    "{action: keep, regex: 'a{1000}'}",
    "{action: keep, regex: '(?P<1x>a)'}",
    "{action: keep, regex: '(?P<a-b>a)'}",
    "{action: keep, regex: 'a{1001}'}",
    "{action: keep, regex: '(?P<n>a)(?P<n>b)'}",
    "{action: keep, regex: '[[:alpha:]]'}",
    "{action: keep, regex: '\\z'}",
    "{action: keep, regex: '\\Z'}",
    "{action: keep, regex: 200}",
    "{target_label: x, replacement: 1}",
    "{target_label: x, regexp: a}",
    "{action: hashmod, target_label: x, modulus: -1}",
];

#[test]
fn loading_agrees_with_promtool() {
    let dir = std::env::temp_dir().join(format!("relabel-promtool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // All checks at once: promtool takes a tenth of a second each.
    let children: Vec<_> = CASES
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let file = dir.join(format!("case-{i}.yaml"));
            let text = format!(
                "scrape_configs:\n- job_name: j\n  static_configs: [{{targets: ['a:1']}}]\n  relabel_configs:\n  - {case}\n"
            );
            std::fs::write(&file, text).unwrap();
            Command::new("promtool")
                .args(["check", "config", "--syntax-only"])
                .arg(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool is installed (Debian package prometheus)")
        })
        .collect();
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for (case, child) in CASES.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        let prometheus = output.status.success();
        let ours = parse_relabel_configs(&format!("- {case}\n"));
        if prometheus {
            accepted += 1;
        } else {
            refused += 1;
        }
        if prometheus != ours.is_ok() {
            disagreements.push(format!(
                "{case}: promtool {}, here {ours:?}",
                String::from_utf8_lossy(&output.stdout)
                    .trim()
                    .replace('\n', " ")
                    + " "
                    + String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        accepted >= 20 && refused >= 20,
        "{accepted} accepted, {refused} refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
