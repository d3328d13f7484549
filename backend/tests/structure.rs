//! The crates' module graphs have no cycles: a module that uses another is
//! never used back by it, directly or through others, so each can be read
//! (and changed) knowing only what it depends on.
//!
//! The graph is read from the sources: every `crate::…`, `super::…`,
//! `self::…` and child-module path a file names, resolved to the longest
//! module that exists as a file. Test code (`#[cfg(test)]` and `tests.rs` files) is left out:
//! a module's tests may use whatever they test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every source file under `src`, by module path (`lib.rs`/`main.rs` are
/// the root, `a/mod.rs` is `a`).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .filter(|file| file.file_name().is_some_and(|name| name != "tests.rs"))
        .filter_map(|file| {
            let relative = file.strip_prefix(src).ok()?.with_extension("");
            let mut module: Module = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] || module.first().is_some_and(|first| first == "bin") {
                return (module == ["lib"] || module == ["main"]).then(|| (Vec::new(), file));
            }
            Some((module, file))
        })
        .collect()
}

/// The text of a file without its test code.
fn production_code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("a readable source file");
    // A `mod.rs` declares its test module before its re-exports: that
    // declaration alone is not the start of its test code.
    let text = text.replace("#[cfg(test)]\nmod tests;", "");
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    // Comments name paths too; they are not dependencies.
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The paths a file names, each resolved against `module`: the segments
/// after `crate`, or after `self` and `super` from where the file is.
fn named_paths(code: &str, module: &Module) -> Vec<Module> {
    let mut paths = Vec::new();
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        // A path has a separator; `pub(super)` and `pub(crate)` are not paths.
        if !word.contains("::") {
            continue;
        }
        let mut segments = word.split("::").filter(|segment| !segment.is_empty()).peekable();
        let mut path = match segments.peek() {
            Some(&"crate") => Vec::new(),
            Some(&"self" | &"super") => module.clone(),
            // Perhaps a child module's item (`sources::poll`); resolved
            // only if such a child exists.
            Some(_) => module.clone(),
            None => continue,
        };
        if matches!(segments.peek(), Some(&"crate" | &"self")) {
            segments.next();
        }
        while segments.next_if_eq(&"super").is_some() {
            path.pop();
        }
        path.extend(segments.map(ToOwned::to_owned));
        paths.push(path);
    }
    // `use super::{a, b}` and `use crate::x::{a, b}`: each name in the group.
    for (start, _) in code.match_indices("::{") {
        let head_start = code[..start].rfind(|c: char| c.is_whitespace() || c == '(').map_or(0, |i| i + 1);
        let head = &code[head_start..start];
        let Some(end) = code[start..].find('}') else { continue };
        for name in code[start + 3..start + end].split(',') {
            let name = name.trim().split("::").next().unwrap_or_default().split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "self" {
                paths.extend(named_paths(&format!("{head}::{name}"), module));
            }
        }
    }
    paths
}

fn dependencies(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules(src);
    let resolve = |path: &Module| -> Option<Module> {
        (0..=path.len()).rev().map(|len| path[..len].to_vec()).find(|prefix| modules.contains_key(prefix))
    };
    modules
        .iter()
        .map(|(module, file)| {
            let depends = named_paths(&production_code(file), module)
                .iter()
                .filter_map(resolve)
                .filter(|target| target != module)
                .collect();
            (module.clone(), depends)
        })
        .collect()
}

/// The module cycles: strongly connected components of more than one
/// module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, (usize, usize)>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, module: &'a Module) -> usize {
            let mine = self.index.len();
            self.index.insert(module, (mine, mine));
            self.stack.push(module);
            let mut low = mine;
            for next in self.graph.get(module).into_iter().flatten() {
                match self.index.get(next) {
                    None => low = low.min(self.visit(next)),
                    Some(&(index, _)) if self.stack.contains(&next) => low = low.min(index),
                    Some(_) => {}
                }
            }
            self.index.insert(module, (mine, low));
            if low == mine {
                let at = self.stack.iter().position(|m| *m == module).expect("on the stack");
                let component: Vec<String> = self
                    .stack
                    .drain(at..)
                    .map(|m| if m.is_empty() { "crate".to_owned() } else { m.join("::") })
                    .collect();
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
            low
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for module in graph.keys() {
        if !walk.index.contains_key(module) {
            walk.visit(module);
        }
    }
    walk.found
}

fn assert_acyclic(crate_src: &str) {
    let graph = dependencies(&root().join(crate_src));
    assert!(graph.len() > 5, "{crate_src}: only {} modules found", graph.len());
    let found = cycles(&graph);
    assert!(found.is_empty(), "{crate_src} has module cycles: {found:?}");
}

#[test]
fn the_server_has_no_module_cycles() {
    assert_acyclic("backend/src");
}

#[test]
fn the_app_has_no_module_cycles() {
    assert_acyclic("frontend/src");
}

#[test]
fn the_wire_types_have_no_module_cycles() {
    let graph = dependencies(&root().join("shared/src"));
    assert!(cycles(&graph).is_empty(), "{:?}", cycles(&graph));
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<Module, BTreeSet<Module>> = [
        (vec!["a".to_owned()], BTreeSet::from([vec!["b".to_owned()]])),
        (vec!["b".to_owned()], BTreeSet::from([vec!["c".to_owned()]])),
        (vec!["c".to_owned()], BTreeSet::from([vec!["a".to_owned()]])),
        (vec!["d".to_owned()], BTreeSet::from([vec!["a".to_owned()]])),
    ]
    .into();
    assert_eq!(cycles(&graph).len(), 1);
    assert_eq!(cycles(&graph)[0].len(), 3);
}

#[test]
fn paths_are_resolved_from_their_module() {
    let module = vec!["connection".to_owned(), "commands".to_owned()];
    let paths = named_paths("use super::state::Connection;\nuse crate::queue::{Capacity, MemberQueue};", &module);
    assert!(paths.contains(&vec!["connection".to_owned(), "state".to_owned(), "Connection".to_owned()]), "{paths:?}");
    assert!(paths.contains(&vec!["queue".to_owned(), "Capacity".to_owned()]), "{paths:?}");
}
