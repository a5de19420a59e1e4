//! The shape of the xtask crate, read from its own sources: every module is
//! either a command or support, no command module uses another command
//! module (what two commands share lives in a support module: `flags`,
//! `preflight`, `generated`, `kind`, `cluster`, `shell`, ...), and nothing
//! uses an item of `main.rs` (every `crate::X` names a module); and only
//! `ctx` prints or executes a plan, so a dry run is the same for every
//! command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules behind `cargo xtask COMMAND`.
const COMMANDS: &[&str] = &[
    "bench",
    "bench_relay",
    "build_image",
    "ci",
    "codegen",
    "doctor",
    "e2e",
    "load_image",
    "matrix",
    "refresh",
    "release_notes",
    "render",
    "tags",
];

/// The modules commands share.
const SUPPORT: &[&str] = &[
    "cluster",
    "config",
    "ctx",
    "engine",
    "flags",
    "generated",
    "inputs",
    "kind",
    "preflight",
    "releases",
    "shell",
    "step",
    "test_engines",
    "ui",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `main.rs` declares (`mod NAME;`, whatever its attributes).
fn declared() -> BTreeSet<String> {
    let main = std::fs::read_to_string(src().join("main.rs")).expect("main.rs");
    main.lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

/// Every `crate::NAME` a source text uses, `use crate::{a, b::c}` included.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of each item at the group's own depth.
            let (mut depth, mut take, mut name) = (0usize, true, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => take = true,
                    c if take && (c.is_ascii_alphanumeric() || c == '_') => name.push(c),
                    _ if take && !name.is_empty() => {
                        out.insert(std::mem::take(&mut name));
                        take = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// (top-level module, file) for every source file but main.rs.
fn files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(src()).sort_by_file_name() {
        let entry = entry.expect("a source entry");
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src()).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .expect("a name");
        if top != "main" {
            out.push((top, path.to_path_buf()));
        }
    }
    out
}

#[test]
fn every_module_is_a_command_or_support() {
    let declared = declared();
    let classified: BTreeSet<String> = COMMANDS
        .iter()
        .chain(SUPPORT)
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        declared, classified,
        "main.rs declares these modules; add a new one to COMMANDS or SUPPORT"
    );
}

#[test]
fn no_command_uses_another_and_nothing_uses_main() {
    let declared = declared();
    let mut problems = Vec::new();
    for (top, file) in files() {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for used in crate_paths(&text) {
            let shown = file.strip_prefix(src()).unwrap_or(&file).display();
            if !declared.contains(&used) {
                problems.push(format!("{shown} uses crate::{used}, an item of main.rs"));
            } else if used != top
                && COMMANDS.contains(&top.as_str())
                && COMMANDS.contains(&used.as_str())
            {
                problems.push(format!(
                    "{shown} (command {top}) uses the command module {used}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn paths_are_read_as_written() {
    assert_eq!(
        crate_paths("use crate::ui::Ui;\nuse crate::{flags::{A, B}, shell};\nx(crate::kind::MIN)"),
        ["flags", "kind", "shell", "ui"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}

/// A source text without its tests (`#[cfg(test)] mod tests` comes last).
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

#[test]
fn only_ctx_prints_or_executes_a_plan() {
    let mut problems = Vec::new();
    for (top, file) in files() {
        let text = std::fs::read_to_string(&file).expect("a source file");
        let text = without_tests(&text);
        let shown = file.strip_prefix(src()).unwrap_or(&file).display();
        // `step` defines Plan::execute; `ctx` is the one caller.
        if top != "step" && top != "ctx" && text.contains(".execute(") {
            problems.push(format!(
                "{shown} executes a plan: hand it to Ctx::carry_out"
            ));
        }
        if top != "ctx" && text.contains("plan.render()") {
            problems.push(format!("{shown} prints a plan: hand it to Ctx::carry_out"));
        }
        if top != "shell" && text.contains("project_shell") {
            problems.push(format!("{shown} makes its own shell: use Ctx::sh"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `cargo xtask` alias shows cargo's progress: the first run compiles
/// for minutes, and `--quiet` would leave the terminal silent all along.
#[test]
fn the_alias_shows_the_first_build() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cargo/config.toml");
    let text = std::fs::read_to_string(&config).expect(".cargo/config.toml");
    let alias = text
        .lines()
        .find(|l| l.trim_start().starts_with("xtask"))
        .expect("the xtask alias");
    let words: Vec<&str> = alias
        .split(['"', ' ', '='])
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        !words.contains(&"--quiet") && !words.contains(&"-q"),
        "the alias hides the build: {alias}"
    );
    assert!(alias.contains("run --package xtask --"), "{alias}");
}
