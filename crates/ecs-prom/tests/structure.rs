//! The workspace's shape, checked on its sources: no crate has an import cycle between its
//! modules, and no crate reaches into another workspace crate's modules (what one crate
//! needs of another is re-exported at that crate's root).

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The workspace's crates: directory name -> Rust name.
fn workspace_crates() -> BTreeMap<String, String> {
    std::fs::read_dir(crates_dir())
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").exists() && p.join("src").exists())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            let rust = name.replace('-', "_");
            (name, rust)
        })
        .collect()
}

/// The code of a file without its comments and string literals, so that neither a doc
/// example nor a message counts as a path.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Identifiers that follow `prefix` in `code` (`crate::` gives the module after it).
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        names.push(&rest[..end]);
    }
    names
}

/// A crate's top-level modules and, for each, the sibling modules it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let top_level = |file: &Path| -> Option<String> {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next()?.as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        (module != "lib" && module != "main" && module != "bin").then_some(module)
    };
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_level(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_level(file) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(file).expect("readable"));
        let nested = file
            .strip_prefix(src)
            .expect("under src")
            .components()
            .count()
            > 1;
        let mut used: Vec<&str> = names_after(&code, "crate::");
        if !nested {
            // In a top-level module file, `super::` is the crate root.
            used.extend(names_after(&code, "super::"));
        }
        let edges = graph.entry(module.clone()).or_default();
        for name in used {
            if name != module && modules.contains(name) {
                edges.insert(name.to_owned());
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut cycles = Vec::new();
    for name in workspace_crates().keys() {
        let graph = module_graph(&crates_dir().join(name).join("src"));
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(format!("{name}: {}", cycle.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph).expect("a cycle"),
        ["a", "b", "c", "a"].map(str::to_owned)
    );
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_owned(), BTreeSet::from(["b".to_owned()]))].into();
    assert_eq!(find_cycle(&acyclic), None);
}

/// The modules a crate's root declares (`mod x;` and `pub mod x;`); a module re-exported at
/// the root with `pub use` is part of the root's API and not among them.
fn root_modules(crate_dir: &Path) -> BTreeSet<String> {
    let root = ["lib.rs", "main.rs"]
        .iter()
        .map(|name| crate_dir.join("src").join(name))
        .find(|path| path.exists());
    let Some(root) = root else {
        return BTreeSet::new();
    };
    let code = code_only(&std::fs::read_to_string(root).expect("readable root"));
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

#[test]
fn no_crate_reaches_into_another_crates_modules() {
    let crates = workspace_crates();
    let modules: BTreeMap<&String, BTreeSet<String>> = crates
        .iter()
        .map(|(dir, rust)| (rust, root_modules(&crates_dir().join(dir))))
        .collect();
    let mut reaches = Vec::new();
    for (name, own) in &crates {
        for file in rust_files(&crates_dir().join(name).join("src")) {
            let code = code_only(&std::fs::read_to_string(&file).expect("readable"));
            for (other_dir, other) in &crates {
                if other == own {
                    continue;
                }
                for item in names_after(&code, &format!("{other}::")) {
                    // A module of the other crate's root followed by `::` is a path into
                    // it; what the root re-exports is fine.
                    let after = format!("{other}::{item}::");
                    let is_module = modules[other].contains(item);
                    if is_module && code.contains(&after) {
                        reaches.push(format!(
                            "{}: {after} (re-export it at the root of crates/{other_dir})",
                            file.strip_prefix(crates_dir())
                                .expect("under crates")
                                .display()
                        ));
                    }
                }
            }
        }
    }
    reaches.sort();
    reaches.dedup();
    assert!(
        reaches.is_empty(),
        "paths into other crates' modules:\n{}",
        reaches.join("\n")
    );
}
