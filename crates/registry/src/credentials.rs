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
    match r {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Credential::Basic { username, password }))
        }
        Ok(DockerCredential::IdentityToken(t)) => Ok(Some(Credential::IdentityToken(t))),
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError,
        ) => Ok(None),
        // The helper's own output may echo secrets: name the helper, not its output.
        Err(CredentialRetrievalError::HelperFailure { helper, .. }) => Err(format!(
            "credential helper docker-credential-{helper} failed; run `docker-credential-{helper} list` to check it"
        )),
        Err(CredentialRetrievalError::HelperCommunicationError) => Err(
            "a credential helper named in Docker's config.json (credsStore or credHelpers) could not be run; \
             install it, or remove it from config.json"
                .to_owned(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

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
