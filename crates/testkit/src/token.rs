//! [`TokenServer`]: a Docker token endpoint issuing RS256 JWTs, signed by
//! `openssl`, that the registry verifies for real.

use super::*;

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `scope` parameters as sent, e.g. `repository:a/b:pull`.
    pub scopes: Vec<String>,
    /// The Basic user name, when credentials were sent.
    pub user: Option<String>,
    pub status: u16,
}

#[derive(Debug)]
pub(crate) struct TokenShared {
    pub(crate) key: PathBuf,
    pub(crate) x5c: String,
    pub(crate) user: Option<(String, String)>,
    pub(crate) anonymous_pull: bool,
    pub(crate) log: Mutex<Vec<TokenRequest>>,
    /// Repository name → how many more tokens grant it no actions at all.
    pub(crate) starve: Mutex<HashMap<String, usize>>,
    /// Fields set in every answer from now on (see [`TokenServer::answer_with`]).
    pub(crate) fields: Mutex<serde_json::Map<String, Value>>,
    pub(crate) stop: Arc<AtomicBool>,
}

/// A Docker token endpoint (`GET /token?service=…&scope=…`) issuing RS256 JWTs
/// that the registry's `auth.token` verifies against the certificate.
#[derive(Debug)]
pub struct TokenServer {
    /// Holds the key and certificate; removed when the server goes.
    pub(crate) _dir: TempDir,
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    pub(crate) shared: Arc<TokenShared>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// `user`: the one account it knows (Basic); it grants that account every
    /// action asked. `anonymous_pull`: whether requests without credentials
    /// get `pull` (else 401).
    pub fn start(test: &str, user: Option<(&str, &str)>, anonymous_pull: bool) -> TokenServer {
        let dir = TempDir::new(&format!("{test}-token"));
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-days", "1", "-subj", "/CN=token-issuer"]));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert))
        .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let addr = listener.local_addr().expect("token server address");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(TokenShared {
            key,
            x5c: STANDARD.encode(der),
            user: user.map(|(u, p)| (u.to_owned(), p.to_owned())),
            anonymous_pull,
            log: Mutex::new(Vec::new()),
            starve: Mutex::new(HashMap::new()),
            fields: Mutex::new(serde_json::Map::new()),
            stop: Arc::clone(&stop),
        });
        let s = Arc::clone(&shared);
        let thread = serve(listener, stop, move |mut conn| {
            let _ = answer_token_request(&s, &mut conn);
        });
        TokenServer {
            _dir: dir,
            addr,
            cert,
            shared,
            thread: Some(thread),
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The registry configuration that trusts this server.
    pub fn auth(&self) -> Auth {
        Auth::Token {
            realm: self.realm(),
            cert: self.cert.clone(),
            push_user: self
                .shared
                .user
                .clone()
                .expect("pushing to a token registry needs a token server user"),
        }
    }

    /// The next `times` tokens issued for `repo` grant it no actions, so the
    /// registry answers 401 `insufficient_scope` to them.
    pub fn starve(&self, repo: &str, times: usize) {
        lock(&self.shared.starve).insert(repo.to_owned(), times);
    }

    /// Every later answer sets these fields (over `token`, `expires_in`, …)
    /// as a broken or hostile token server might: a string value
    /// `"{authorization}"` becomes the request's `Authorization` header.
    pub fn answer_with(&self, fields: Value) {
        if let Value::Object(map) = fields {
            lock(&self.shared.fields).extend(map);
        }
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.log).clone()
    }

    /// How many requests asked for exactly this scope.
    pub fn requests_for(&self, scope: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.scopes.iter().any(|s| s == scope))
            .count()
    }

    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        stop_serving(self.addr, &self.shared.stop, self.thread.take());
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn answer_token_request(s: &TokenShared, conn: &mut TcpStream) -> io::Result<()> {
    let req = read_request_head(conn)?;
    let query = query_pairs(&req.target);
    let scopes: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned))
        .filter(|v| !v.is_empty())
        .collect();
    let basic = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .map(|raw| String::from_utf8_lossy(&raw).into_owned());
    let (status, user, all_actions) = match (&basic, &s.user) {
        (Some(raw), Some((u, p))) if *raw == format!("{u}:{p}") => (200, Some(u.clone()), true),
        (Some(raw), _) => (401, raw.split(':').next().map(str::to_owned), false),
        (None, _) if s.anonymous_pull => (200, None, false),
        (None, _) => (401, None, false),
    };
    lock(&s.log).push(TokenRequest {
        scopes: scopes.clone(),
        user: user.clone(),
        status,
    });
    let json_headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    if status != 200 {
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        return write_response(conn, 401, &json_headers, body.to_string().as_bytes(), false);
    }
    let mut access = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let starved = {
            let mut starve = lock(&s.starve);
            match starve.get_mut(name) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|a| !starved && (all_actions || *a == "pull"))
            .collect();
        access.push(json!({"type": kind, "name": name, "actions": granted}));
    }
    let token = sign_jwt(s, user.as_deref().unwrap_or(""), access)?;
    let mut body = json!({"token": token, "access_token": token, "expires_in": 300});
    for (k, v) in lock(&s.fields).iter() {
        let v = match v.as_str() {
            Some("{authorization}") => Value::from(req.header("authorization").unwrap_or("")),
            _ => v.clone(),
        };
        body[k] = v;
    }
    write_response(conn, 200, &json_headers, body.to_string().as_bytes(), false)
}

pub(crate) fn sign_jwt(s: &TokenShared, subject: &str, access: Vec<Value>) -> io::Result<String> {
    static JTI: AtomicUsize = AtomicUsize::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [s.x5c]});
    let claims = json!({
        "iss": "test-issuer",
        "sub": subject,
        "aud": "test-registry",
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&s.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("openssl's stdin")
        .write_all(signing_input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(out.stdout)
    ))
}
