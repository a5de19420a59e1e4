//! [`Registry`]: a real `docker-registry` (CNCF distribution) on 127.0.0.1,
//! without auth, with htpasswd Basic auth, or with token auth.

use super::*;

/// How a [`Registry`] authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// htpasswd file with this one user (bcrypt, as distribution requires).
    Htpasswd {
        user: String,
        password: String,
    },
    /// Docker token auth against a [`TokenServer`]; `push_user` is what skopeo logs in with.
    Token {
        realm: String,
        cert: PathBuf,
        push_user: (String, String),
    },
}

/// A running `docker-registry serve`, killed on drop.
#[derive(Debug)]
pub struct Registry {
    pub(crate) dir: TempDir,
    pub(crate) addr: SocketAddr,
    pub(crate) auth: Auth,
    /// `sh` running the registry; its stdin ties the registry's life to ours.
    pub(crate) child: Child,
    pub(crate) lifeline: Option<ChildStdin>,
    pub(crate) pushes: AtomicUsize,
}

impl Registry {
    pub fn start(test: &str, auth: Auth) -> Registry {
        let dir = TempDir::new(test);
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    yaml_str(&file.to_string_lossy())
                )
            }
            Auth::Token { realm, cert, .. } => format!(
                "auth:\n  token:\n    realm: {}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                yaml_str(realm),
                yaml_str(&cert.to_string_lossy())
            ),
        };
        let mut last_log = String::new();
        // The port is free when picked but may be taken before the registry
        // binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let name = dir.path().file_name().unwrap_or_default().to_string_lossy();
            let instance = format!("{name}-{port}");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = dir.path().join("config.yml");
            let log = dir.path().join("registry.log");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: error\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: {addr}\n  secret: registry-tests\n  \
                     headers:\n    X-Registry-Tests-Instance: [{instance}]\n\
                     {auth_yaml}",
                    yaml_str(&dir.path().join("storage").to_string_lossy())
                ),
            )
            .expect("write the registry config");
            let log_file = std::fs::File::create(&log).expect("create the registry log");
            // `sh` keeps a copy of our pipe on fd 3 in a background job: when
            // this process dies, even by SIGKILL, the pipe closes and the job
            // stops the registry. `sh` itself exits when the registry does.
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    "exec 3<&0; docker-registry serve \"$1\" </dev/null & pid=$!; \
                     (read -r _ <&3; kill \"$pid\" 2>/dev/null) & wait \"$pid\"",
                    "sh",
                ])
                .arg(&config)
                .stdin(Stdio::piped())
                .stdout(log_file.try_clone().expect("share the registry log"))
                .stderr(log_file)
                .spawn()
                .expect("start docker-registry");
            let lifeline = child.stdin.take();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // Another test's server may hold the port we picked: only
                // our registry sends our instance header.
                let ours = http(addr, "GET", "/v2/", &[]).is_ok_and(|r| {
                    r.header("x-registry-tests-instance") == Some(instance.as_str())
                });
                if ours {
                    return Registry {
                        dir,
                        addr,
                        auth,
                        child,
                        lifeline,
                        pushes: AtomicUsize::new(0),
                    };
                }
                if Instant::now() > deadline {
                    drop(lifeline);
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not answer on {addr} within 10s; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(lifeline);
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("docker-registry exited at start three times; its log:\n{last_log}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/<path>` parsed as the client parses user input.
    pub fn repo(&self, path: &str) -> Repository {
        Repository::parse(&format!("{}/{path}", self.host())).expect("a valid repository")
    }

    /// Where the registry keeps `path`'s manifests and tags.
    pub(crate) fn repo_dir(&self, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(path)
    }

    pub(crate) fn tags_dir(&self, path: &str) -> PathBuf {
        self.repo_dir(path).join("_manifests/tags")
    }

    /// skopeo's credential arguments for pushing here.
    pub(crate) fn dest_creds(&self) -> Vec<String> {
        match &self.auth {
            Auth::None => Vec::new(),
            Auth::Htpasswd { user, password } => {
                vec!["--dest-creds".into(), format!("{user}:{password}")]
            }
            Auth::Token { push_user, .. } => {
                vec![
                    "--dest-creds".into(),
                    format!("{}:{}", push_user.0, push_user.1),
                ]
            }
        }
    }

    /// Pushes a one-layer image whose content depends on `marker` to
    /// `path:tag` with `skopeo copy`; returns its manifest digest.
    pub fn push(&self, path: &str, tag: &str, marker: &str) -> String {
        let n = self.pushes.fetch_add(1, Ordering::Relaxed);
        let layout = self.dir.path().join(format!("layout-{n}"));
        write_oci_layout(&layout, marker);
        run(skopeo_command()
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(self.dest_creds())
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{path}:{tag}", self.host())));
        self.stored_digest(path, tag)
    }

    /// The digest the registry's storage records for `path:tag`.
    pub fn stored_digest(&self, path: &str, tag: &str) -> String {
        let link = self.tags_dir(path).join(tag).join("current/link");
        std::fs::read_to_string(&link)
            .unwrap_or_else(|e| panic!("read {}: {e}", link.display()))
            .trim()
            .to_owned()
    }

    /// Adds tags pointing at `from`'s manifest, written straight into the
    /// registry's storage as a push writes them: `tags/<name>/current/link`
    /// holds the digest (tag listing reads the `tags` directory, resolving reads
    /// that link). The per-tag `index/` that only untagging reads is left out:
    /// directory operations are slow on some disks and 10,000 tags add up.
    pub fn make_tags(&self, path: &str, from: &str, names: &[String]) {
        let tags = self.tags_dir(path);
        let digest = self.stored_digest(path, from);
        for name in names {
            let tag = tags.join(name);
            let current = tag.join("current");
            std::fs::create_dir(&tag).expect("create a tag");
            std::fs::create_dir(&current).expect("create a tag");
            std::fs::write(current.join("link"), &digest).expect("write a tag link");
        }
    }

    /// Deletes the manifest `digest` through the registry API (no-auth
    /// registries only); distribution then removes every tag pointing at it.
    pub fn delete_manifest(&self, path: &str, digest: &str) {
        let resp = http(
            self.addr,
            "DELETE",
            &format!("/v2/{path}/manifests/{digest}"),
            &[],
        )
        .expect("DELETE the manifest");
        assert_eq!(resp.status, 202, "DELETE {path}@{digest}: {resp:?}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
