//! Privileged containers where the machine's own limits are narrower than a
//! privileged container asks for, so that real kind can start its nodes.
//!
//! kind runs every node with `docker run --privileged` (or `podman run`).
//! Inside a sandbox whose capability bounding set lacks a capability (here
//! CAP_SYS_RESOURCE) runc refuses such a container ("unable to apply caps");
//! podman fails earlier, on an rlimit above the sandbox's hard limit. Where
//! that happens, and only there, [`Privileged::setup`] installs
//! `files/oci-runtime-clamp` (drops the capabilities the machine lacks,
//! clamps rlimits, then execs the real runc) and a `docker`/`podman` shim to
//! put first in `PATH` that adds `--runtime ...` to `run`:
//!
//! - podman takes `--runtime PATH` directly;
//! - Docker needs the wrapper registered as an *extra* runtime: it is added
//!   under `runtimes` in `/etc/docker/daemon.json`, the daemon reloads on
//!   SIGHUP, and the file is then restored byte for byte and the daemon told
//!   again. Docker keeps a registered runtime until it restarts, so the
//!   daemon's configuration file is changed only for that moment, and
//!   `default-runtime` never.
//!
//! On machines where `--privileged` works (GitHub's runners), nothing is
//! installed and the engines run as they are. This is test support: none of
//! it is part of what kind-crio gives a user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::standin::FileLock;

const WRAPPER: &str = include_str!("../files/oci-runtime-clamp");
const DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// The original daemon.json while it is changed (`.absent` if there was
/// none), so that a run killed in that moment is mended by the next one.
/// Machine-wide, as daemon.json is, and kept across reboots.
const BACKUP: &str = "/var/tmp/kind-crio-test-daemon.json.backup";
const ABSENT: &str = "/var/tmp/kind-crio-test-daemon.json.absent";
/// One change of daemon.json at a time, whichever checkout makes it (a lock
/// file in /run/lock, which the next boot clears).
const DAEMON_LOCK: &str = "/run/lock/kind-crio-test-daemon.json.lock";

/// What to put in front of `PATH` so that `docker run --privileged` or
/// `podman run --privileged` works on this machine.
#[derive(Debug, Clone)]
pub struct Privileged {
    shim_dir: Option<PathBuf>,
}

impl Privileged {
    /// Tries a plain `ENGINE run --rm --privileged` of `probe_image` (an
    /// image in the engine's store with `/bin/true`, and the environment
    /// `envs` the engine needs, e.g. `CONTAINERS_STORAGE_CONF`); if it fails,
    /// installs the wrapper and the shim and checks that the same run works
    /// through them.
    pub fn setup(
        engine: &str,
        probe_image: &str,
        envs: &[(&str, &Path)],
    ) -> Result<Privileged, String> {
        let probe = |path: Option<&Path>| {
            let mut cmd = Command::new(match path {
                Some(dir) => dir.join(engine),
                None => PathBuf::from(engine),
            });
            cmd.args([
                "run",
                "--rm",
                "--privileged",
                "--entrypoint",
                "/bin/true",
                probe_image,
            ]);
            for (k, v) in envs {
                cmd.env(k, v);
            }
            cmd.stdin(Stdio::null()).output()
        };
        let plain = probe(None).map_err(|e| format!("cannot run {engine}: {e}"))?;
        if plain.status.success() {
            return Ok(Privileged { shim_dir: None });
        }
        let dir = crate::scratch_root().join("privileged");
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let _lock = FileLock::acquire(&dir.join("setup.lock"))?;
        let runc = crate::find_on_path("runc").ok_or("runc is not on PATH")?;
        let wrapper = dir.join("oci-runtime-clamp");
        write_executable(
            &wrapper,
            &WRAPPER.replace("@REAL_RUNTIME@", &runc.display().to_string()),
        )?;
        let real = crate::find_on_path(engine).ok_or_else(|| format!("{engine} is not on PATH"))?;
        let shim_dir = dir.join(format!("shim-{engine}"));
        std::fs::create_dir_all(&shim_dir)
            .map_err(|e| format!("create {}: {e}", shim_dir.display()))?;
        let runtime = match engine {
            "docker" => {
                let name = runtime_name(&wrapper);
                register_docker_runtime(&name, &wrapper)?;
                name
            }
            _ => wrapper.display().to_string(),
        };
        write_executable(&shim_dir.join(engine), &shim(&real, &runtime))?;
        let shimmed = probe(Some(&shim_dir)).map_err(|e| format!("cannot run {engine}: {e}"))?;
        if !shimmed.status.success() {
            return Err(format!(
                "{engine} run --privileged fails here ({}), and also through {} ({})",
                String::from_utf8_lossy(&plain.stderr).trim(),
                wrapper.display(),
                String::from_utf8_lossy(&shimmed.stderr).trim()
            ));
        }
        Ok(Privileged {
            shim_dir: Some(shim_dir),
        })
    }

    /// The directory to put first in `PATH`, if this machine needs one.
    pub fn shim_dir(&self) -> Option<&Path> {
        self.shim_dir.as_deref()
    }
}

/// One runtime name per wrapper path, so two checkouts never share one.
fn runtime_name(wrapper: &Path) -> String {
    let hash = crate::sha256_hex(wrapper.as_os_str().as_encoded_bytes());
    format!("kind-crio-clamp-{}", &hash[..8])
}

/// A POSIX shell script: `ENGINE run ...` gets `--runtime RUNTIME`, every
/// other command goes to the real engine unchanged.
fn shim(real: &Path, runtime: &str) -> String {
    let real = crate::standin::shell_quote(&real.display().to_string());
    let runtime = crate::standin::shell_quote(runtime);
    format!(
        "#!/bin/sh\n\
         # Test support: privileged runs through the capability-clamping runtime.\n\
         if [ \"${{1:-}}\" = run ]; then\n    shift\n    exec {real} run --runtime {runtime} \"$@\"\nfi\n\
         exec {real} \"$@\"\n"
    )
}

fn write_executable(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))
}

/// The runtimes the Docker daemon knows (`docker info`), as JSON.
fn docker_runtimes() -> Result<serde_json::Value, String> {
    let out = Command::new("docker")
        .args(["info", "--format", "{{json .Runtimes}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker info: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker info failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("docker info's runtimes: {e}"))
}

fn runtime_registered(name: &str, wrapper: &Path) -> Result<bool, String> {
    let runtimes = docker_runtimes()?;
    Ok(runtimes[name]["path"].as_str() == Some(&*wrapper.display().to_string()))
}

/// Adds `name` → `wrapper` to the daemon's runtimes: daemon.json with the
/// extra entry, SIGHUP, wait until `docker info` lists it, then the original
/// file back exactly as it was (or gone, if there was none) and SIGHUP again.
fn register_docker_runtime(name: &str, wrapper: &Path) -> Result<(), String> {
    let _lock = FileLock::acquire(Path::new(DAEMON_LOCK))?;
    mend_after_a_killed_run()?;
    if runtime_registered(name, wrapper)? {
        return Ok(());
    }
    let original = match std::fs::read(DAEMON_JSON) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("read {DAEMON_JSON}: {e}")),
    };
    // serde_json keeps integers exact (u64 rlimits, for example); the file
    // written here lives only until the restore below.
    let mut config: serde_json::Value = match &original {
        Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => {
            serde_json::from_slice(bytes).map_err(|e| format!("{DAEMON_JSON} is not JSON: {e}"))?
        }
        _ => serde_json::json!({}),
    };
    let runtimes = config
        .as_object_mut()
        .ok_or_else(|| format!("{DAEMON_JSON} is not a JSON object"))?
        .entry("runtimes")
        .or_insert_with(|| serde_json::json!({}));
    runtimes[name] = serde_json::json!({ "path": wrapper.display().to_string() });
    match &original {
        Some(bytes) => std::fs::write(BACKUP, bytes),
        None => std::fs::write(ABSENT, ""),
    }
    .map_err(|e| format!("back up {DAEMON_JSON}: {e}"))?;
    let restore = Restore { original };
    std::fs::write(
        DAEMON_JSON,
        serde_json::to_vec_pretty(&config).map_err(|e| format!("encode: {e}"))?,
    )
    .map_err(|e| format!("write {DAEMON_JSON}: {e}"))?;
    reload_docker()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !runtime_registered(name, wrapper)? {
        if Instant::now() > deadline {
            return Err(format!(
                "the Docker daemon did not pick up runtime {name} from {DAEMON_JSON} after SIGHUP"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(restore);
    reload_docker()?;
    // A reload keeps registered runtimes; say so loudly if this engine does not.
    std::thread::sleep(Duration::from_millis(500));
    if !runtime_registered(name, wrapper)? {
        return Err(format!(
            "the Docker daemon dropped runtime {name} when {DAEMON_JSON} was restored"
        ));
    }
    Ok(())
}

/// Puts daemon.json back exactly as it was, whatever happens in between.
struct Restore {
    original: Option<Vec<u8>>,
}

/// A backup left by a run killed while daemon.json held the extra runtime:
/// put the original back first.
fn mend_after_a_killed_run() -> Result<(), String> {
    if let Ok(bytes) = std::fs::read(BACKUP) {
        std::fs::write(DAEMON_JSON, bytes).map_err(|e| format!("restore {DAEMON_JSON}: {e}"))?;
        let _ = std::fs::remove_file(BACKUP);
        eprintln!("testkit: restored {DAEMON_JSON} from {BACKUP}, left by a run that was killed");
    } else if Path::new(ABSENT).exists() {
        let _ = std::fs::remove_file(DAEMON_JSON);
        let _ = std::fs::remove_file(ABSENT);
        eprintln!("testkit: removed {DAEMON_JSON}, which a run that was killed had written");
    }
    Ok(())
}

impl Drop for Restore {
    fn drop(&mut self) {
        let restored = match &self.original {
            Some(bytes) => std::fs::write(DAEMON_JSON, bytes),
            None => std::fs::remove_file(DAEMON_JSON),
        };
        if restored.is_ok() {
            let _ = std::fs::remove_file(BACKUP);
            let _ = std::fs::remove_file(ABSENT);
        }
    }
}

/// SIGHUP to the Docker daemon, which makes it reload daemon.json.
fn reload_docker() -> Result<(), String> {
    let pid = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("pidof").arg("dockerd").output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (!text.is_empty()).then_some(text)
        })
        .ok_or(
            "cannot find the Docker daemon's process (no /var/run/docker.pid, no pidof dockerd)",
        )?;
    crate::standin::run(Command::new("kill").args(["-HUP", &pid])).map(|_| ())
}

/// While held, the host has a `/lib/modules` for kind to mount.
///
/// kind mounts the host's `/lib/modules` into every node, read-only. Where
/// the host has none (a container, a sandbox), Docker creates the missing
/// mount source as an empty directory and leaves it behind, and podman
/// refuses the node (`statfs /lib/modules: no such file or directory`). A
/// cluster test holds one of these: the first holder creates the empty
/// directory if it is missing, and the last one removes it again, so the
/// machine is left as it was. Without the rights to create it, nothing is
/// done (podman then fails with its own message).
#[derive(Debug)]
pub struct HostModules;

const HOST_MODULES: &str = "/lib/modules";

/// (holders, whether the first one created the directory).
static HOST_MODULES_STATE: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

impl HostModules {
    pub fn hold() -> HostModules {
        let mut state = HOST_MODULES_STATE.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 == 0 {
            state.1 =
                !Path::new(HOST_MODULES).exists() && std::fs::create_dir(HOST_MODULES).is_ok();
            if state.1 {
                eprintln!(
                    "testkit: created an empty {HOST_MODULES} for kind's nodes to mount; removed after the tests"
                );
            }
        }
        state.0 += 1;
        HostModules
    }
}

impl Drop for HostModules {
    fn drop(&mut self) {
        let mut state = HOST_MODULES_STATE.lock().unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        if state.0 == 0 && std::mem::take(&mut state.1) {
            // Only the empty directory made above; anything put in it stays.
            let _ = std::fs::remove_dir(HOST_MODULES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_adds_the_runtime_to_run_only() {
        let s = shim(Path::new("/usr/bin/docker"), "kind-crio-clamp-0123abcd");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("exec /usr/bin/docker run --runtime kind-crio-clamp-0123abcd \"$@\""));
        assert!(s.ends_with("exec /usr/bin/docker \"$@\"\n"));
        assert!(
            shim(Path::new("/p q/podman"), "/w/x")
                .contains("exec '/p q/podman' run --runtime /w/x")
        );
    }

    #[test]
    fn runtime_names_follow_the_wrapper_path() {
        let a = runtime_name(Path::new("/a/oci-runtime-clamp"));
        assert!(a.starts_with("kind-crio-clamp-") && a.len() == "kind-crio-clamp-".len() + 8);
        assert_ne!(a, runtime_name(Path::new("/b/oci-runtime-clamp")));
    }
}

#[cfg(test)]
mod wrapper_tests {
    use super::*;

    /// The wrapper, with a "real runtime" that prints the config it was given.
    fn wrapper_in(dir: &Path) -> PathBuf {
        let fake = dir.join("fake-runc");
        write_executable(&fake, "#!/bin/sh\necho \"args: $*\"\n").expect("fake runc");
        let wrapper = dir.join("oci-runtime-clamp");
        write_executable(
            &wrapper,
            &WRAPPER.replace("@REAL_RUNTIME@", &fake.display().to_string()),
        )
        .expect("wrapper");
        wrapper
    }

    fn own_hard_nofile() -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("Max open files");
        line.split_whitespace()
            .nth(4)
            .expect("hard")
            .parse()
            .unwrap_or(u64::MAX)
    }

    fn own_bounding() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .expect("CapBnd");
        u64::from_str_radix(hex.trim(), 16).expect("hex")
    }

    #[test]
    fn create_and_exec_get_the_machines_capabilities_and_limits() {
        if !crate::tools_present(
            "create_and_exec_get_the_machines_capabilities_and_limits",
            &["python3"],
        ) {
            return;
        }
        let dir = crate::TempDir::new("wrapper");
        let wrapper = wrapper_in(dir.path());
        let caps = serde_json::json!(["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_BPF"]);
        let process = serde_json::json!({
            "capabilities": {"bounding": caps, "effective": caps, "inheritable": caps,
                             "permitted": caps, "ambient": caps},
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 1_048_576u64, "soft": 1_048_576u64},
                {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX},
            ],
        });
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).expect("bundle");
        std::fs::write(
            bundle.join("config.json"),
            serde_json::json!({"ociVersion": "1.0.2", "process": process}).to_string(),
        )
        .expect("config.json");
        let process_file = dir.path().join("process.json");
        std::fs::write(&process_file, process.to_string()).expect("process.json");

        let run = |args: &[&str]| {
            let out = Command::new(&wrapper)
                .args(args)
                .output()
                .expect("run the wrapper");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let bundle_arg = bundle.display().to_string();
        let args = [
            "--root",
            "/run/x",
            "--log-format",
            "json",
            "create",
            "--bundle",
            &bundle_arg,
            "id",
        ];
        // The real runtime gets the arguments unchanged.
        assert_eq!(run(&args).trim(), format!("args: {}", args.join(" ")));
        let process_arg = process_file.display().to_string();
        run(&["--root", "/run/x", "exec", "--process", &process_arg, "id"]);

        let bounding = own_bounding();
        let expected_caps: Vec<&str> =
            [("CAP_CHOWN", 0), ("CAP_SYS_RESOURCE", 24), ("CAP_BPF", 39)]
                .iter()
                .filter(|(_, bit)| bounding >> bit & 1 == 1)
                .map(|(c, _)| *c)
                .collect();
        let hard = own_hard_nofile().min(1_048_576);
        for doc in [
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(bundle.join("config.json")).expect("read"),
            )
            .expect("json")["process"]
                .clone(),
            serde_json::from_str(&std::fs::read_to_string(&process_file).expect("read"))
                .expect("json"),
        ] {
            for set in [
                "bounding",
                "effective",
                "inheritable",
                "permitted",
                "ambient",
            ] {
                assert_eq!(
                    doc["capabilities"][set],
                    serde_json::json!(expected_caps),
                    "{set}"
                );
            }
            assert_eq!(doc["rlimits"][0]["hard"], hard);
            assert_eq!(doc["rlimits"][0]["soft"], hard);
            // An unlimited hard limit here leaves 2^64-1 exactly as it was.
            let core_hard = std::fs::read_to_string("/proc/self/limits")
                .expect("limits")
                .lines()
                .find(|l| l.starts_with("Max core file size"))
                .and_then(|l| l.split_whitespace().nth(5).map(str::to_owned))
                .expect("core");
            if core_hard == "unlimited" {
                assert_eq!(doc["rlimits"][1]["hard"], u64::MAX);
            }
        }
    }
}
