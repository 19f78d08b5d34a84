//! Tidy checks over the workspace's own files, after rust-analyzer's: what a reviewer would
//! otherwise have to remember. Every Rust file says what it is for, every conformance check
//! is run, and ARCHITECTURE.md's map of crate dependencies is the one Cargo.toml draws.
//! (That both backends' migrations define the same tables and columns is checked in
//! `renkei-store`'s PostgreSQL tests, against real databases.)
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_comment_saying_what_it_is_for() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        for part in ["src", "tests", "benches", "fuzz"] {
            rust_files(&krate.join(part), &mut files);
        }
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.strip_prefix(workspace()).unwrap().display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "files that do not open with `//!`: {undocumented:#?}"
    );
}

/// The checks a conformance file defines: public async functions taking the store under
/// test, each with whether it also takes hooks into its backend (generic over them), which
/// the backends' test files then call themselves.
fn checks_defined(text: &str) -> BTreeMap<String, bool> {
    let mut checks = BTreeMap::new();
    let mut rest = text;
    while let Some(at) = rest.find("pub async fn ") {
        rest = &rest[at + "pub async fn ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let signature = &rest[..rest.find('{').unwrap_or(rest.len())];
        if signature.contains("store: Arc<dyn Store>") {
            let hooked = rest[name.len()..].starts_with('<');
            checks.insert(name, hooked);
        }
    }
    checks
}

#[test]
fn every_conformance_check_is_in_the_suite_each_backend_runs() {
    let dir = workspace().join("crates/renkei-store/src");
    let suite = std::fs::read_to_string(dir.join("conformance.rs")).unwrap();
    let mut defined = checks_defined(&suite);
    // The checks are kept in one file per concern beside the suite.
    let mut concerns = Vec::new();
    rust_files(&dir.join("conformance"), &mut concerns);
    for file in concerns {
        defined.extend(checks_defined(&std::fs::read_to_string(file).unwrap()));
    }
    // Checks with backend hooks are called from the backends' test files.
    let backends = ["sqlite.rs", "postgres.rs"].map(|f| {
        std::fs::read_to_string(workspace().join("crates/renkei-store/tests/it").join(f)).unwrap()
    });
    let uncalled: Vec<&String> = defined
        .iter()
        .filter(|(name, hooked)| {
            **hooked
                && !backends
                    .iter()
                    .any(|b| b.contains(&format!("conformance::{name}(")))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        uncalled.is_empty(),
        "hooked checks no backend calls: {uncalled:#?}"
    );
    let defined: BTreeSet<String> = defined
        .into_iter()
        .filter(|(_, hooked)| !hooked)
        .map(|(name, _)| name)
        .collect();
    // The list the suite macro stamps into each backend's test file.
    let start = suite.find("(@tests $factory;").unwrap();
    let list = &suite[start + "(@tests $factory;".len()..];
    let list = &list[..list.find(");").unwrap()];
    let listed: BTreeSet<String> = list
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(defined.len() > 30, "found only {} checks", defined.len());
    let unlisted: Vec<_> = defined.difference(&listed).collect();
    let undefined: Vec<_> = listed.difference(&defined).collect();
    assert!(
        unlisted.is_empty() && undefined.is_empty(),
        "checks no backend runs: {unlisted:#?}; listed but not defined: {undefined:#?}"
    );
}

/// Each workspace crate's normal dependencies on other workspace crates, from Cargo.
fn dependencies_from_cargo() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| ours.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// The table under "Dependencies" in ARCHITECTURE.md: `| \`crate\` | \`dep\`, \`dep\` |`.
fn dependencies_from_architecture() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("| crate | depends on |")
        .expect("ARCHITECTURE.md has the crate dependency table");
    text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let names = |cell: &str| -> BTreeSet<String> {
                cell.split(',')
                    .map(|n| n.trim().trim_matches('`').to_owned())
                    .filter(|n| !n.is_empty() && n != "—")
                    .collect()
            };
            let krate = names(cells[1]).into_iter().next().unwrap();
            (krate, names(cells[2]))
        })
        .collect()
}

#[test]
fn architecture_md_maps_the_crate_dependencies_cargo_has() {
    assert_eq!(dependencies_from_architecture(), dependencies_from_cargo());
}

#[test]
fn every_crate_links_its_integration_tests_into_one_binary() {
    let mut extra = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let tests = krate.unwrap().path().join("tests");
        let Ok(entries) = std::fs::read_dir(&tests) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // Cargo makes a test binary of every `tests/*.rs` and `tests/*/main.rs`.
            let binary = if path.is_dir() {
                path.join("main.rs").exists() && !path.ends_with("it")
            } else {
                path.extension().is_some_and(|e| e == "rs")
            };
            if binary {
                extra.push(
                    path.strip_prefix(workspace())
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        extra.is_empty(),
        "test binaries besides `tests/it/main.rs`: {extra:#?}"
    );
}

/// Lines a source file may have before its `//!` must say why it is longer.
const LONG_FILE: usize = 700;

#[test]
fn every_source_file_reads_in_one_sitting_or_says_why_not() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        rust_files(&krate.unwrap().path().join("src"), &mut files);
    }
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let lines = text.lines().count();
            let header: String = text.lines().take_while(|l| l.starts_with("//!")).collect();
            (lines > LONG_FILE && !header.contains("This file is long because")).then(|| {
                format!(
                    "{} ({lines} lines)",
                    f.strip_prefix(workspace()).unwrap().display()
                )
            })
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "files over {LONG_FILE} lines whose `//!` does not say \"This file is long because\": {unexplained:#?}"
    );
}
