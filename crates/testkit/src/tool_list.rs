//! The one list of the tools the tests and `cargo xtask ci` need: `.ci/tools`,
//! which `.ci/run` and `.ci/sid-tools` install from. Pure, and without
//! dependencies: `cargo xtask ci` (whose binary links none of the test kit)
//! includes this file as a module of its own.

/// `.ci/tools`, as committed.
pub const TOOLS_FILE: &str = include_str!("../../../.ci/tools");

/// Where a tool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Debian's packages (`apt-get install`).
    Apt,
    /// Debian's package, installed only when the program is not on PATH.
    AptIfMissing,
    /// Debian sid, into `target/tools` by `.ci/sid-tools`.
    Sid,
    /// PyPI, into the `target/tools/venv`.
    Pip,
}

/// One line of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub from: Source,
    pub package: &'static str,
    /// What the tests look for; `None` where the package alone is needed.
    pub program: Option<&'static str>,
    /// What goes unchecked without it.
    pub checks: &'static str,
}

impl Tool {
    /// How to get it, for a message.
    pub fn install(&self) -> String {
        match self.from {
            Source::Apt | Source::AptIfMissing => format!("apt-get install {}", self.package),
            Source::Sid => format!(
                "bash .ci/sid-tools installs it into {}",
                sid_dir(self.program.unwrap_or(self.package))
            ),
            Source::Pip => format!("pip install {}", self.package),
        }
    }
}

/// Every tool of the list, in its order. Panics on a malformed line: the
/// file is committed, and its test reads every line.
pub fn tools() -> Vec<Tool> {
    TOOLS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse(line).unwrap_or_else(|| panic!(".ci/tools: bad line {line:?}")))
        .collect()
}

/// The tool whose program is `program`.
pub fn tool(program: &str) -> Option<Tool> {
    tools().into_iter().find(|t| t.program == Some(program))
}

/// Where `.ci/sid-tools` puts a sid tool (its PROGRAM name), relative to the
/// project root: the file the tests and `ci` look for.
pub fn sid_path(program: &str) -> String {
    match program {
        "containerd-2" => "target/tools/containerd-2/bin/containerd".to_owned(),
        "docker-buildx" => "target/tools/docker/cli-plugins/docker-buildx".to_owned(),
        other => format!("target/tools/bin/{other}"),
    }
}

fn sid_dir(program: &str) -> String {
    let path = sid_path(program);
    path.rsplit_once('/')
        .map_or(path.clone(), |(dir, _)| dir.to_owned())
}

/// `FROM PACKAGE PROGRAM CHECKS...`.
fn parse(line: &'static str) -> Option<Tool> {
    let (from, rest) = word(line)?;
    let (package, rest) = word(rest)?;
    let (program, rest) = word(rest)?;
    let checks = rest.trim();
    let from = match from {
        "apt" => Source::Apt,
        "apt-if-missing" => Source::AptIfMissing,
        "sid" => Source::Sid,
        "pip" => Source::Pip,
        _ => return None,
    };
    if checks.is_empty() {
        return None;
    }
    Some(Tool {
        from,
        package,
        program: (program != "-").then_some(program),
        checks,
    })
}

/// The first word of `s` and what follows it.
fn word(s: &'static str) -> Option<(&'static str, &'static str)> {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_reads() {
        let all = tools();
        assert!(all.len() > 20, "{all:?}");
        let kind = tool("kind").expect("kind is listed");
        assert_eq!(kind.from, Source::Sid);
        assert_eq!(
            kind.install(),
            "bash .ci/sid-tools installs it into target/tools/bin"
        );
        assert_eq!(
            tool("htpasswd").map(|t| t.install()).as_deref(),
            Some("apt-get install apache2-utils")
        );
        assert_eq!(
            tool("containerd-2").map(|t| sid_path(t.program.unwrap_or_default())),
            Some("target/tools/containerd-2/bin/containerd".to_owned())
        );
        assert!(
            all.iter()
                .any(|t| t.package == "dockerfile" && t.program.is_none())
        );
        assert_eq!(parse("brew jq jq the preload"), None);
        assert_eq!(parse("apt jq jq"), None, "a line must say what it checks");
    }
}
