//! The documents a user reads first stay true: the flag reference is the
//! flags' own doc comments, the README stays a front door, and every path
//! ARCHITECTURE names exists.
//!
//! `UPDATE_DOCS=1 cargo test -p roomcast-backend --test docs` writes
//! `docs/CONFIGURATION.md` from the flags; without it, the test fails when
//! the file is not what the flags say.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use roomcast_backend::Config;

/// The README's budget: what it is, the two commands, the dev loop, the
/// guarantees and a short results table; everything else is linked.
const README_MAX_BYTES: usize = 8 * 1024;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// A table cell: one line, no column breaks.
fn cell(text: &str) -> String {
    text.trim().replace("\n\n", "<br>").replace('\n', " ").replace('|', "\\|")
}

/// docs/CONFIGURATION.md, from the clap definition of [`Config`].
fn configuration_reference() -> String {
    let command = Config::command();
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from the flags' doc comments in backend/src/config.rs by\n\
         `UPDATE_DOCS=1 cargo test -p roomcast-backend --test docs`; edit those, not this file. -->\n\n",
    );
    let about = command.get_long_about().or(command.get_about()).map(ToString::to_string).unwrap_or_default();
    out.push_str(about.trim());
    out.push_str("\n\n`roomcast --help` prints the same.\n");
    let arguments: Vec<_> =
        command.get_arguments().filter(|arg| arg.get_long().is_some() && !arg.is_hide_set()).collect();
    let mut headings: Vec<&str> = Vec::new();
    for heading in arguments.iter().filter_map(|arg| arg.get_help_heading()) {
        if !headings.contains(&heading) {
            headings.push(heading);
        }
    }
    for heading in headings {
        out.push_str(&format!("\n## {heading}\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n"));
        for arg in arguments.iter().filter(|arg| arg.get_help_heading() == Some(heading)) {
            let flag = format!("`--{}`", arg.get_long().unwrap_or_default());
            let env = arg.get_env().map_or_else(String::new, |env| format!("`{}`", env.to_string_lossy()));
            let defaults: Vec<String> =
                arg.get_default_values().iter().map(|value| format!("`{}`", value.to_string_lossy())).collect();
            let default = if defaults.is_empty() { "none".to_owned() } else { defaults.join(", ") };
            let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|value| !value.is_hide_set())
                .map(|value| format!("`{}`", value.get_name()))
                .collect();
            let meaning =
                if values.is_empty() { cell(&help) } else { format!("{} (one of {})", cell(&help), values.join(", ")) };
            out.push_str(&format!("| {flag} | {env} | {default} | {meaning} |\n"));
        }
    }
    out
}

#[test]
fn the_configuration_reference_is_what_the_flags_say() {
    let path = root().join("docs/CONFIGURATION.md");
    let wanted = configuration_reference();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &wanted).expect("docs/CONFIGURATION.md written");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == wanted,
        "docs/CONFIGURATION.md is not what the flags say: run `UPDATE_DOCS=1 cargo test -p roomcast-backend --test docs`"
    );
}

#[test]
fn every_flag_is_in_the_configuration_reference_once() {
    let reference = configuration_reference();
    for arg in Config::command().get_arguments() {
        if let Some(long) = arg.get_long().filter(|_| !arg.is_hide_set()) {
            let row = format!("| `--{long}` |");
            assert_eq!(reference.matches(&row).count(), 1, "--{long}");
            assert!(arg.get_help().is_some(), "--{long} has no doc comment");
        }
    }
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.len() <= README_MAX_BYTES, "README.md is {} bytes; at most {README_MAX_BYTES}", readme.len());
    for link in ["docs/CONFIGURATION.md", "docs/OPERATIONS.md", "docs/SECURITY.md", "ARCHITECTURE.md"] {
        assert!(readme.contains(link), "README.md links {link}");
    }
}

/// The backticked names in `text` that look like paths: with a `/`, or a
/// file name with an extension this repository uses.
fn named_paths(text: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 8] = [".rs", ".md", ".sh", ".lua", ".js", ".toml", ".json", ".html"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| !name.contains(char::is_whitespace) && !name.contains("://") && !name.contains(['{', '<']))
        .filter(|name| !name.starts_with('/') && !name.starts_with('-'))
        .filter(|name| {
            let file = name.trim_end_matches('/');
            (name.contains('/') && !name.contains(':')) || EXTENSIONS.iter().any(|ext| file.ends_with(ext))
        })
        .map(ToOwned::to_owned)
        .collect()
}

/// Where ARCHITECTURE's names are relative to: the root, a crate's sources
/// or tests (the code map names modules by their path there, and test
/// suites by their file name).
const BASES: [&str; 11] = [
    "",
    "backend/src",
    "backend/src/history",
    "backend",
    "backend/tests",
    "frontend/src",
    "shared/src",
    "bench/src",
    "fuzz",
    "e2e",
    "e2e/tests",
];

/// Whether `name` exists from one of the [`BASES`], or, for a bare file
/// name (`subscriber.rs` in the bullet of `redis_store/`), within one of
/// the directories `recent` names (the last few named before it).
fn exists(name: &str, recent: &[&str]) -> bool {
    let root = root();
    let within = |dir: &str| BASES.iter().any(|base| root.join(base).join(dir).join(name).exists());
    within("") || (!name.contains('/') && recent.iter().any(|dir| within(dir)))
}

#[test]
fn every_path_architecture_names_exists() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let names = named_paths(&architecture);
    assert!(names.len() > 40, "found only {} paths: the pattern broke", names.len());
    // The directories named last, nearest first: a bare file name belongs
    // to one of them.
    let mut recent: Vec<&str> = Vec::new();
    let mut missing = Vec::new();
    for name in &names {
        if !exists(name, &recent) {
            missing.push(name);
        }
        if let Some(dir) = name.strip_suffix('/').or_else(|| name.rsplit_once('/').map(|(dir, _)| dir)) {
            recent.insert(0, dir);
            recent.truncate(4);
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}
