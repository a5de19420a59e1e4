//! Whether the tools a test needs are here ([`tools_present`]: a missing
//! one fails the test under `CI=true`, skips it loudly elsewhere), and
//! running a step as an image build step does.

use super::*;

/// Tools a registry test needs: the registry itself and skopeo to push.
pub const REGISTRY_TOOLS: &[&str] = &["docker-registry", "skopeo"];
/// Plus `htpasswd` for a Basic-auth registry.
pub const HTPASSWD_TOOLS: &[&str] = &["docker-registry", "skopeo", "htpasswd"];
/// Plus `openssl` for the token server's key and signatures.
pub const TOKEN_TOOLS: &[&str] = &["docker-registry", "skopeo", "openssl"];

/// True when every tool is on `PATH`. Otherwise: with `CI=true` this panics
/// (CI must have them); elsewhere it prints a loud SKIPPED line and returns
/// false, and the test returns early.
pub fn tools_present(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        if find_on_path(tool).is_some() {
            continue;
        }
        // How to get it, from .ci/tools.
        let how = tool_list::tool(tool).map_or_else(
            || format!("{tool} is not in .ci/tools: add it there"),
            |t| t.install(),
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} not found: {how}");
        }
        // Straight to the stderr handle: libtest captures `eprintln!` of
        // passing tests, and a skip must be seen.
        let _ = writeln!(
            io::stderr(),
            "\n==================== SKIPPED {test}: {tool} not found ({how}) ===================="
        );
        return false;
    }
    true
}

/// `program`, run as an image build step runs it: as root without
/// CAP_SYS_ADMIN (BuildKit's and buildah's default), through `setpriv`.
pub fn as_in_a_build_step(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--bounding-set",
        "-sys_admin",
        "--inh-caps",
        "-sys_admin",
        "--",
        program,
    ]);
    cmd
}

pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Runs a command to completion; panics with its stderr when it fails.
pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
