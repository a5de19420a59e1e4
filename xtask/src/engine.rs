//! The container engine (docker or podman) and the commands kind-crio runs
//! with it. Each command is built here once, so the difference between the
//! engines, and between one platform and several, is decided in one place.

use std::fmt;
use std::path::Path;

use anyhow::{Result, bail};
use xshell::{Cmd, Shell, cmd};

/// The container engine that builds and pushes images and runs kind's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

impl std::str::FromStr for Engine {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker" => Ok(Engine::Docker),
            "podman" => Ok(Engine::Podman),
            other => bail!("engine {other:?} is not supported; use \"docker\" or \"podman\""),
        }
    }
}

/// What a build produces, which decides how it is built and pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One local image of one platform (`docker build`, `podman build -t`),
    /// pushed afterwards if asked.
    Image,
    /// A multi-platform index BuildKit pushes as it finishes (`docker buildx
    /// build --push` on a docker-container builder): docker keeps one
    /// platform per local image.
    PushedIndex,
    /// A local multi-platform manifest list (`podman build --manifest`),
    /// pushed with `podman manifest push --all` if asked.
    ManifestList,
}

/// The BuildKit builder that holds several platforms for docker.
const BUILDER: &str = "kind-crio";

impl Engine {
    /// The program, which is also kind's provider name
    /// (`KIND_EXPERIMENTAL_PROVIDER`).
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// How this engine builds `platforms` platforms, pushed or not.
    pub fn output(self, platforms: usize, push: bool) -> Result<Output> {
        Ok(match (self, platforms > 1) {
            (_, false) => Output::Image,
            (Engine::Docker, true) if push => Output::PushedIndex,
            (Engine::Docker, true) => bail!(
                "docker keeps one platform per local image: with several --arch, add --push (one multi-arch index) or use --engine podman"
            ),
            (Engine::Podman, true) => Output::ManifestList,
        })
    }

    /// Builds the context in `dir` for `platforms` (`linux/amd64,...`) as `target`.
    pub fn build<'a>(
        self,
        sh: &'a Shell,
        output: Output,
        platforms: &str,
        build_args: &[String],
        target: &str,
        dir: &Path,
    ) -> Cmd<'a> {
        match (self, output) {
            (Engine::Docker, Output::PushedIndex) => cmd!(
                sh,
                "docker buildx build --builder {BUILDER} --platform {platforms} {build_args...} --push -t {target} {dir}"
            ),
            // BuildKit, which the Dockerfile's RUN --mount needs: docker
            // 23.0 and later use it anyway; before that, only when asked.
            (Engine::Docker, _) => cmd!(
                sh,
                "docker build --platform {platforms} {build_args...} -t {target} {dir}"
            )
            .env("DOCKER_BUILDKIT", "1"),
            (Engine::Podman, Output::ManifestList) => cmd!(
                sh,
                "podman build --format docker --platform {platforms} {build_args...} --manifest {target} {dir}"
            ),
            (Engine::Podman, _) => cmd!(
                sh,
                "podman build --format docker --platform {platforms} {build_args...} -t {target} {dir}"
            ),
        }
    }

    /// For docker's multi-platform builds: the builder that can hold them,
    /// created once and kept.
    pub fn prepare_builder(sh: &Shell) -> Cmd<'_> {
        cmd!(
            sh,
            "sh -c 'docker buildx inspect kind-crio >/dev/null 2>&1 || docker buildx create --name kind-crio --driver docker-container'"
        )
    }

    /// Pushes what `build` made, or None when the build pushed it already.
    /// `tls` is podman's `--tls-verify=false` for a plain-HTTP registry.
    pub fn push<'a>(
        self,
        sh: &'a Shell,
        output: Output,
        tls: &[&str],
        target: &str,
    ) -> Option<Cmd<'a>> {
        Some(match (self, output) {
            (_, Output::PushedIndex) => return None,
            (Engine::Docker, _) => cmd!(sh, "docker push {target}"),
            (Engine::Podman, Output::ManifestList) => cmd!(
                sh,
                "podman manifest push --all {tls...} {target} docker://{target}"
            ),
            (Engine::Podman, _) => cmd!(sh, "podman push {tls...} {target}"),
        })
    }

    /// The engine's version: docker's server (the daemon answers), podman's client.
    pub fn version(self, sh: &Shell) -> Cmd<'_> {
        let (server, client) = ("{{.Server.Version}}", "{{.Version}}");
        match self {
            Engine::Docker => cmd!(sh, "docker version --format {server}"),
            Engine::Podman => cmd!(sh, "podman version --format {client}"),
        }
    }

    /// `sh -c SCRIPT` in a throw-away privileged container of `image`.
    pub fn run_privileged_sh<'a>(self, sh: &'a Shell, image: &str, script: &str) -> Cmd<'a> {
        let engine = self.program();
        cmd!(
            sh,
            "{engine} run --rm --privileged --entrypoint sh {image} -c {script}"
        )
    }

    /// `ENGINE image inspect --format FORMAT REFERENCE`.
    pub fn image_inspect<'a>(self, sh: &'a Shell, format: &str, reference: &str) -> Cmd<'a> {
        let engine = self.program();
        cmd!(sh, "{engine} image inspect --format {format} {reference}")
    }

    /// `ENGINE exec NODE PROGRAM`: add the program's arguments with `.args`.
    pub fn exec<'a>(self, sh: &'a Shell, node: &str, program: &str) -> Cmd<'a> {
        let engine = self.program();
        cmd!(sh, "{engine} exec {node} {program}")
    }

    /// `ENGINE exec -i NODE PROGRAM`: the same, reading standard input.
    pub fn exec_stdin<'a>(self, sh: &'a Shell, node: &str, program: &str) -> Cmd<'a> {
        let engine = self.program();
        cmd!(sh, "{engine} exec -i {node} {program}")
    }

    /// `ENGINE save -o ARCHIVE IMAGE`.
    pub fn save<'a>(self, sh: &'a Shell, archive: &Path, image: &str) -> Cmd<'a> {
        let engine = self.program();
        cmd!(sh, "{engine} save -o {archive} {image}")
    }

    /// `ENGINE ps --all` of the containers with every label in `labels`,
    /// printing `format`.
    pub fn ps<'a>(self, sh: &'a Shell, labels: &[String], format: &str) -> Cmd<'a> {
        let engine = self.program();
        let filters = labels
            .iter()
            .flat_map(|l| ["--filter".to_owned(), l.clone()]);
        cmd!(sh, "{engine} ps --all")
            .args(filters)
            .args(["--format", format])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::shell_line;

    fn line(cmd: Cmd<'_>) -> String {
        shell_line(&std::process::Command::from(cmd), &[])
    }

    /// The engine × platforms matrix, in one table: what is built, how, and
    /// the command that pushes it when --push asks (none: the build pushed).
    #[test]
    fn builds_and_pushes_per_engine_and_platforms() {
        let sh = Shell::new().unwrap();
        let dir = Path::new("ctx");
        let args = ["--no-cache".to_owned()];
        let cases = [
            (
                Engine::Docker,
                1,
                true,
                "DOCKER_BUILDKIT=1 docker build --platform P --no-cache -t t ctx",
                Some("docker push t"),
            ),
            (
                Engine::Docker,
                2,
                true,
                "docker buildx build --builder kind-crio --platform P --no-cache --push -t t ctx",
                None,
            ),
            (
                Engine::Podman,
                1,
                true,
                "podman build --format docker --platform P --no-cache -t t ctx",
                Some("podman push '--tls-verify=false' t"),
            ),
            (
                Engine::Podman,
                2,
                false,
                "podman build --format docker --platform P --no-cache --manifest t ctx",
                Some("podman manifest push --all '--tls-verify=false' t docker://t"),
            ),
        ];
        for (engine, platforms, push, build, pushed) in cases {
            let output = engine.output(platforms, push).unwrap();
            assert_eq!(line(engine.build(&sh, output, "P", &args, "t", dir)), build);
            let tls = ["--tls-verify=false"];
            assert_eq!(
                engine.push(&sh, output, &tls, "t").map(line).as_deref(),
                pushed,
                "{engine} {platforms} {push}"
            );
        }
        let err = Engine::Docker.output(2, false).unwrap_err().to_string();
        assert!(err.contains("add --push"), "{err}");
    }

    #[test]
    fn names_and_parsing() {
        for engine in [Engine::Docker, Engine::Podman] {
            assert_eq!(engine.to_string().parse::<Engine>().unwrap(), engine);
        }
        assert!("nerdctl".parse::<Engine>().is_err());
        let sh = Shell::new().unwrap();
        assert_eq!(
            line(Engine::Podman.ps(
                &sh,
                &["label=a".to_owned(), "label=b".to_owned()],
                "{{.Names}}"
            )),
            "podman ps --all --filter 'label=a' --filter 'label=b' --format '{{.Names}}'"
        );
    }
}
