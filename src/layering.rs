//! The shape rules, checked by tests: a module uses only modules of a lower layer,
//! and no two modules of the crate use each other, directly or round a loop (a child
//! may use its parent, `super::Portal`, which is not counted as an edge); and no
//! function is longer than [`MAX_FUNCTION_LINES`].

/// The most lines a function may span, from `fn` to its closing brace.
pub const MAX_FUNCTION_LINES: usize = 60;

/// The functions of a file longer than [`MAX_FUNCTION_LINES`], as `name (lines)`.
/// A function ends at the first line that is its indentation and a closing brace.
pub fn long_functions(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = &line[..line.len() - code.len()];
        let Some(name) = fn_name(code) else {
            continue;
        };
        let closing = format!("{indent}}}");
        let end = lines[start + 1..].iter().position(|l| *l == closing);
        if let Some(end) = end.filter(|&end| end + 2 > MAX_FUNCTION_LINES) {
            long.push(format!("{name} ({} lines)", end + 2));
        }
    }
    long
}

/// The name of the function a line starts, if it starts one.
fn fn_name(code: &str) -> Option<&str> {
    let mut rest = code;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.bytes().position(|b| !is_ident(b))?;
    Some(&rest[..end])
}

/// The layers, lowest first. A module may use modules of lower layers only.
pub const LAYERS: &[&[&str]] = &[
    &["config", "layering"],
    &[
        "contract",
        "clock",
        "retry",
        "locale",
        "telemetry",
        "sealing",
    ],
    &["db"],
    &["registry", "access", "outbox"],
    &["delivery"],
    &["notices"],
    &["intake", "report"],
    &["broker", "http"],
    &["app"],
    &["cli"],
];

/// The layer of a top-level module; None for the crate root files.
pub fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top))
}

/// One source file: its module path (`["http", "portal", "pages"]`) and its text.
pub struct Source {
    pub module: Vec<String>,
    pub text: String,
}

/// The modules a file names through `crate::…` and `super::…`, as module paths cut to
/// the longest prefix that is a module of `known`.
pub fn uses(source: &Source, known: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in source.text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for path in paths_in(code, &source.module) {
            if let Some(module) = longest_module(&path, known) {
                if !found.contains(&module) {
                    found.push(module);
                }
            }
        }
    }
    found
}

/// Every `crate::a::b…` and `super::a…` path in a line of code, made absolute.
/// A group (`crate::a::{b, c}`) gives `crate::a::b` and `crate::a::c`.
fn paths_in(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = next_root(rest) {
        let (root, tail) = rest[at..].split_once("::").expect("a root ends in ::");
        let preceded_by_dollar = at > 0 && rest.as_bytes()[at - 1] == b'$';
        let mut base: Vec<String> = match root {
            "crate" => Vec::new(),
            _ => here[..here.len().saturating_sub(1)].to_vec(),
        };
        let (found, after) = segments(tail);
        base.extend(found);
        rest = after;
        if preceded_by_dollar {
            continue;
        }
        match after.strip_prefix('{') {
            Some(group) => {
                for item in group.split('}').next().unwrap_or("").split(',') {
                    let (more, _) = segments(item.trim());
                    let mut path = base.clone();
                    path.extend(more);
                    paths.push(path);
                }
            }
            None => paths.push(base),
        }
    }
    paths
}

/// Where the next `crate::` or `super::` starts, as a whole word.
fn next_root(text: &str) -> Option<usize> {
    ["crate::", "super::"]
        .iter()
        .filter_map(|root| {
            text.match_indices(root)
                .map(|(i, _)| i)
                .find(|&i| i == 0 || !is_ident(text.as_bytes()[i - 1]))
        })
        .min()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The lowercase path segments at the start of `text`, and what follows them.
fn segments(text: &str) -> (Vec<String>, &str) {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .bytes()
            .position(|b| !is_ident(b))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_lowercase()) {
            return (out, rest);
        }
        out.push(word.to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => return (out, &rest[end..]),
        }
    }
}

fn longest_module(path: &[String], known: &[Vec<String>]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| known.contains(prefix))
}

/// Every edge that breaks the rule, as `from -> to (why)`.
pub fn violations(sources: &[Source]) -> Vec<String> {
    let known: Vec<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut edges = Vec::new();
    let mut bad = Vec::new();
    for source in sources {
        for to in uses(source, &known) {
            let from = &source.module;
            if from.is_empty() || to.is_empty() || from.starts_with(&to) {
                continue; // the crate root, or a parent
            }
            if let Some(why) = layer_breach(from, &to) {
                bad.push(format!("{} -> {} ({why})", from.join("::"), to.join("::")));
            }
            edges.push((from.clone(), to));
        }
    }
    bad.extend(cycles(&edges));
    bad
}

fn layer_breach(from: &[String], to: &[String]) -> Option<String> {
    if from[0] == to[0] {
        return None;
    }
    let (a, b) = (layer_of(&from[0])?, layer_of(&to[0])?);
    (b >= a).then(|| format!("layer {a} may not use layer {b}"))
}

/// The loops among modules, each named once by a module on it.
fn cycles(edges: &[(Vec<String>, Vec<String>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (from, to) in edges {
        if reaches(edges, to, from) {
            let loop_name = format!("{} -> {} (a loop)", from.join("::"), to.join("::"));
            found.push(loop_name);
        }
    }
    found
}

/// Whether `to` can be reached from `start` along `edges`.
fn reaches(edges: &[(Vec<String>, Vec<String>)], start: &[String], to: &[String]) -> bool {
    let mut seen: Vec<&[String]> = vec![start];
    let mut queue: Vec<&[String]> = vec![start];
    while let Some(at) = queue.pop() {
        for (_, next) in edges.iter().filter(|(from, _)| from.as_slice() == at) {
            if next.as_slice() == to {
                return true;
            }
            if !seen.contains(&next.as_slice()) {
                seen.push(next);
                queue.push(next);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_tree(dir: &Path, module: Vec<String>, out: &mut Vec<Source>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                let mut child = module.clone();
                child.push(name);
                read_tree(&path, child, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut m = module.clone();
                if !matches!(stem, "mod" | "lib" | "main") {
                    m.push(stem.to_string());
                }
                let text = std::fs::read_to_string(&path).unwrap();
                out.push(Source { module: m, text });
            }
        }
    }

    fn source(module: &str, text: &str) -> Source {
        Source {
            module: module.split("::").map(str::to_string).collect(),
            text: text.to_string(),
        }
    }

    #[test]
    fn the_crate_imports_one_way() {
        let mut sources = Vec::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        read_tree(&src, Vec::new(), &mut sources);
        // The checker itself quotes back edges in its own tests.
        sources.retain(|s| s.module != ["layering"]);
        assert!(sources.len() > 40, "read the source tree");
        for s in &sources {
            if let Some(top) = s.module.first() {
                assert!(layer_of(top).is_some(), "{top} has no layer in LAYERS");
            }
        }
        let bad = violations(&sources);
        assert!(
            bad.is_empty(),
            "imports that point back up:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn no_function_is_longer_than_the_limit() {
        let mut sources = Vec::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        read_tree(&src, Vec::new(), &mut sources);
        let long: Vec<String> = sources
            .iter()
            .flat_map(|s| {
                let module = s.module.join("::");
                long_functions(&s.text)
                    .into_iter()
                    .map(move |f| format!("{module}::{f}"))
            })
            .collect();
        assert!(
            long.is_empty(),
            "functions over {MAX_FUNCTION_LINES} lines:\n{}",
            long.join("\n")
        );
    }

    #[test]
    fn a_long_function_is_found() {
        let body = "    x += 1;\n".repeat(MAX_FUNCTION_LINES);
        let text = format!("fn short() {{\n}}\n\npub async fn long() {{\n{body}}}\n");
        assert_eq!(
            long_functions(&text),
            [format!("long ({} lines)", MAX_FUNCTION_LINES + 2)]
        );
    }

    #[test]
    fn a_planted_back_edge_is_found() {
        let ok = [
            source("db", "use crate::config::DbUrl;"),
            source(
                "notices::decide",
                "use crate::delivery::queue::{self, Policy};",
            ),
            source("delivery::queue", "use crate::db::{ts, DbConn};"),
        ];
        assert!(violations(&ok).is_empty());
        let mut planted = ok;
        planted[2]
            .text
            .push_str("\nuse crate::notices::decide::Verdict;");
        let bad = violations(&planted);
        assert!(
            bad.iter()
                .any(|b| b.contains("delivery::queue -> notices::decide")),
            "{bad:?}"
        );
    }

    #[test]
    fn siblings_that_use_each_other_are_a_loop() {
        let sources = [
            source("http::portal", "mod pages; mod actions;"),
            source("http::portal::pages", "use super::actions::history;"),
            source("http::portal::actions", "use super::pages::Row;"),
        ];
        let bad = violations(&sources);
        assert!(bad.iter().any(|b| b.contains("a loop")), "{bad:?}");
    }

    #[test]
    fn groups_and_macros_are_read() {
        let known = vec![
            vec!["db".to_string()],
            vec!["contract".to_string(), "outbound".to_string()],
            vec!["contract".to_string()],
        ];
        let s = source(
            "notices",
            "use crate::{db::DbConn, contract::outbound::X};\n$crate::db::x // crate::app",
        );
        assert_eq!(uses(&s, &known), vec![known[0].clone(), known[1].clone()]);
    }
}
