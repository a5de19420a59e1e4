//! Where registry credentials come from: Docker's config file and credential
//! helpers (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`), then
//! podman's auth file (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`).
//! Both are read by `docker_credential`; this module only chooses the keys and
//! turns "nothing configured" into anonymous access.

use std::fmt;

use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::reference::Repository;

/// A credential for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a personal access token as the password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token ("identitytoken" in Docker's config).
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

/// How a client finds credentials.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// Docker config and helpers, then podman's auth file (what `docker` and `skopeo` users expect).
    #[default]
    Config,
    /// Never send credentials.
    Anonymous,
    /// This credential for every registry (tests, CI secrets).
    Fixed(Credential),
}

impl CredentialSource {
    /// Looks up the credential for `repo`'s registry. `Ok(None)`: anonymous.
    pub fn lookup(&self, repo: &Repository) -> Result<Option<Credential>, String> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Fixed(c) => Ok(Some(c.clone())),
            CredentialSource::Config => from_config(repo),
        }
    }
}

fn from_config(repo: &Repository) -> Result<Option<Credential>, String> {
    // Docker keys Docker Hub by its v1 URL; podman by "docker.io".
    let mut keys = vec![repo.credential_key()];
    if repo.registry() != repo.credential_key() {
        keys.push(repo.registry());
    }
    for key in &keys {
        if let Some(c) = convert(docker_credential::get_credential(key))? {
            return Ok(Some(c));
        }
    }
    for key in &keys {
        if let Some(c) = convert(docker_credential::get_podman_credential(key))? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn convert(
    r: Result<DockerCredential, CredentialRetrievalError>,
) -> Result<Option<Credential>, String> {
    use CredentialRetrievalError as E;
    // Every failure is described in this module's words: a helper's stdout
    // carries the secret (and may carry it on failure too), its stderr may
    // echo it, and the crate's own `Display` prints both.
    match r {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Credential::Basic { username, password }))
        }
        Ok(DockerCredential::IdentityToken(t)) => Ok(Some(Credential::IdentityToken(t))),
        Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => Ok(None),
        // How docker's helpers say "nothing stored for this registry" (exit 1
        // and this line on stdout); docker then goes on without credentials.
        Err(E::HelperFailure { stdout, .. }) if stdout.trim() == HELPER_NOT_FOUND => Ok(None),
        // `helper` is the program's name, `docker-credential-NAME`.
        Err(E::HelperFailure { helper, .. }) => Err(format!(
            "credential helper {helper} failed (its output is not shown: it may hold a secret); \
             run `{helper} list` to check it"
        )),
        Err(E::MalformedHelperResponse) => Err(
            "a credential helper named in Docker's config.json answered with something other than \
             its JSON (not shown: it may hold a secret); check it, or remove it from config.json"
                .to_owned(),
        ),
        Err(E::HelperCommunicationError) => Err(
            "a credential helper named in Docker's config.json (credsStore or credHelpers) could not be run; \
             install it, or remove it from config.json"
                .to_owned(),
        ),
        Err(E::CredentialDecodingError) => Err(
            "an \"auth\" entry in Docker's config.json or podman's auth.json is not base64 of user:password"
                .to_owned(),
        ),
        Err(E::CredentialMismatchError) => Err(
            "an entry in Docker's config.json has an \"auth\" that disagrees with its username and password"
                .to_owned(),
        ),
    }
}

/// What docker-credential-helpers print when they hold nothing for a registry.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{c:?}"), "Basic(u, ***)");
        let t = Credential::IdentityToken("tok".into());
        assert!(!format!("{t:?}").contains("tok"));
    }
}
