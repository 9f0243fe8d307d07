//! TLS and basic authentication the way every Prometheus exporter takes them: the exporter-toolkit
//! web configuration file (`--web.config.file` of node_exporter and friends), read with rustls
//! and bcrypt.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/webui-doctor/tls.crt
//!   key_file: /etc/webui-doctor/tls.key
//!   # client_auth_type: RequireAndVerifyClientCert
//!   # client_ca_file: /etc/webui-doctor/clients.crt
//!   # min_version: TLS13
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
//! ```
//!
//! What is read, as the toolkit documents it: `tls_server_config` (`cert_file`/`cert`,
//! `key_file`/`key`, `client_auth_type`, `client_ca_file`/`client_ca`, `min_version`,
//! `max_version`), `http_server_config.headers` (the five headers the toolkit allows) and
//! `http2` (accepted; this server speaks HTTP/1.1), and `basic_auth_users` (bcrypt hashes). What
//! rustls cannot do the same way is refused with a reason rather than ignored: TLS 1.0 and 1.1,
//! `RequestClientCert` and `RequireAnyClientCert` (a client certificate taken without checking
//! it), and the Go-specific `cipher_suites`, `curve_preferences`, `client_allowed_sans` and
//! `rate_limit`. Relative paths are relative to the file's directory.
//!
//! [`Reloading`] re-reads the file, and the files it names, when one of them changes (looked at
//! once a second at most, on the next connection): a renewed certificate is served without a
//! restart. A change that does not load is logged and the last good configuration stays.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a web configuration file could not be used.
#[derive(Debug)]
pub enum WebConfigError {
    /// The file (or one it names) could not be read.
    Read(PathBuf, io::Error),
    /// The file is not the toolkit's YAML.
    Parse(PathBuf, String),
    /// A value that cannot be served as asked.
    Invalid(String),
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebConfigError::Read(path, e) => write!(f, "reading {}: {e}", path.display()),
            WebConfigError::Parse(path, e) => write!(f, "{}: {e}", path.display()),
            WebConfigError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for WebConfigError {}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a configuration add to every response.
const HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// One loaded configuration.
pub struct WebConfig {
    tls: Option<Arc<rustls::ServerConfig>>,
    /// User name -> bcrypt hash.
    users: BTreeMap<String, String>,
    headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Credentials bcrypt has accepted under this configuration, as keyed digests (a check
    /// costs ~70 ms at cost 10; the toolkit caches the same way).
    verified: Mutex<HashSet<u64>>,
    key: std::hash::RandomState,
    /// Every file it was read from, for [`Reloading`].
    files: Vec<PathBuf>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks the file at `path` and every file it names.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| WebConfigError::Read(path.to_owned(), e))?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| WebConfigError::Parse(path.to_owned(), first_line(&e)))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut files = vec![path.to_owned()];
        if file.rate_limit.is_some() {
            return Err(unsupported("rate_limit", "failed log-ins are rate-limited per address already"));
        }
        let tls = match file.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(t, base, &mut files)?)),
            None => None,
        };
        let http = file.http_server_config.unwrap_or_default();
        let _ = http.http2; // allowed, not required: this server answers HTTP/1.1
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let Some(known) = HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) else {
                return Err(WebConfigError::Invalid(format!(
                    "http_server_config.headers: {name} is not one of {}",
                    HEADERS.join(", ")
                )));
            };
            let value = axum::http::HeaderValue::from_str(&value).map_err(|_| {
                WebConfigError::Invalid(format!("http_server_config.headers.{known}: not a header value"))
            })?;
            headers.push((axum::http::HeaderName::from_static(static_lower(known)), value));
        }
        let users = file.basic_auth_users.unwrap_or_default();
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(WebConfigError::Invalid(format!("basic_auth_users: user name {user:?} has a ':'")));
            }
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) || hash.len() != 60 {
                return Err(WebConfigError::Invalid(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                )));
            }
        }
        Ok(WebConfig { tls, users, headers, verified: Mutex::default(), key: std::hash::RandomState::new(), files })
    }

    /// The TLS setting to accept connections with, when the file has `tls_server_config`.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }

    /// Whether requests need basic authentication (`basic_auth_users` is not empty).
    pub fn basic_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// The headers to add to every response.
    pub fn headers(&self) -> &[(axum::http::HeaderName, axum::http::HeaderValue)] {
        &self.headers
    }

    /// Whether `user` with `password` is let in: the password checked against the user's bcrypt
    /// hash (slow by design; run it off the async threads). An unknown user costs the same as a
    /// known one, so the time taken does not tell which names exist.
    pub fn check(&self, user: &str, password: &str) -> bool {
        use std::hash::BuildHasher;
        let digest = self.key.hash_one((user, password));
        if self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&digest) {
            return true;
        }
        // A hash of a password nobody has, at the usual cost, checked for unknown users.
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DECOY.get_or_init(|| bcrypt::hash(format!("{digest:x}"), 10).unwrap_or_default()).as_str(), false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            self.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(digest);
        }
        ok
    }
}

/// The header names in [`HEADERS`], lower-case and `'static` (what `HeaderName::from_static` needs).
fn static_lower(name: &str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

fn unsupported(field: &str, why: &str) -> WebConfigError {
    WebConfigError::Invalid(format!("{field} is not supported: {why}"))
}

fn first_line(e: &impl fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("not valid YAML").to_owned()
}

/// PEM text given inline or in a file (relative to `base`), named in errors by `field`.
fn pem(
    inline: Option<String>,
    file: Option<PathBuf>,
    field: &str,
    base: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, WebConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            Err(WebConfigError::Invalid(format!("tls_server_config: give {field} or {field}_file, not both")))
        }
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(path)) => {
            let path = base.join(path);
            let bytes = std::fs::read(&path).map_err(|e| WebConfigError::Read(path.clone(), e))?;
            files.push(path);
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

/// A version's place in the order: 2 for TLS 1.2, 3 for TLS 1.3.
fn version(name: &str, field: &str) -> Result<u8, WebConfigError> {
    match name {
        "TLS12" => Ok(2),
        "TLS13" => Ok(3),
        "TLS10" | "TLS11" => {
            Err(unsupported(&format!("tls_server_config.{field}: {name}"), "rustls speaks TLS 1.2 and 1.3 only"))
        }
        other => Err(WebConfigError::Invalid(format!("tls_server_config.{field}: {other:?} is not TLS12 or TLS13"))),
    }
}

fn tls_config(t: TlsFile, base: &Path, files: &mut Vec<PathBuf>) -> Result<rustls::ServerConfig, WebConfigError> {
    for (field, given) in [
        ("cipher_suites", t.cipher_suites.is_some_and(|c| !c.is_empty())),
        ("curve_preferences", t.curve_preferences.is_some_and(|c| !c.is_empty())),
        ("client_allowed_sans", t.client_allowed_sans.is_some_and(|c| !c.is_empty())),
    ] {
        if given {
            return Err(unsupported(&format!("tls_server_config.{field}"), "rustls's safe defaults are used"));
        }
    }
    let _ = t.prefer_server_cipher_suites; // rustls always prefers the server's order
    let cert = pem(t.cert, t.cert_file, "cert", base, files)?
        .ok_or_else(|| WebConfigError::Invalid("tls_server_config: cert_file (or cert) is required".into()))?;
    let key = pem(t.key, t.key_file, "key", base, files)?
        .ok_or_else(|| WebConfigError::Invalid("tls_server_config: key_file (or key) is required".into()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| WebConfigError::Invalid(format!("tls_server_config: the certificate is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(WebConfigError::Invalid("tls_server_config: no certificate in the certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| WebConfigError::Invalid(format!("tls_server_config: no private key in the key file: {e}")))?;
    let min = version(t.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = version(t.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(n, _)| (min..=max).contains(n))
            .map(|(_, v)| v)
            .collect();
    if versions.is_empty() {
        return Err(WebConfigError::Invalid("tls_server_config: min_version is above max_version".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::Invalid(format!("tls_server_config: {e}")))?;
    let ca = pem(t.client_ca, t.client_ca_file, "client_ca", base, files)?;
    let roots = || -> Result<Arc<rustls::RootCertStore>, WebConfigError> {
        let ca = ca.as_deref().ok_or_else(|| {
            WebConfigError::Invalid("tls_server_config: client_auth_type needs client_ca_file (or client_ca)".into())
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            let c = c.map_err(|e| WebConfigError::Invalid(format!("tls_server_config: client CA is not PEM: {e}")))?;
            roots.add(c).map_err(|e| WebConfigError::Invalid(format!("tls_server_config: client CA: {e}")))?;
        }
        Ok(Arc::new(roots))
    };
    let verifier = |optional: bool| -> Result<_, WebConfigError> {
        let b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone());
        let b = if optional { b.allow_unauthenticated() } else { b };
        b.build().map_err(|e| WebConfigError::Invalid(format!("tls_server_config: client CA: {e}")))
    };
    let builder = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(verifier(true)?),
        "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(verifier(false)?),
        t @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(unsupported(
                &format!("tls_server_config.client_auth_type: {t}"),
                "it takes a client certificate without checking it; use RequireAndVerifyClientCert",
            ));
        }
        other => return Err(WebConfigError::Invalid(format!("tls_server_config.client_auth_type: unknown {other:?}"))),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        WebConfigError::Invalid(format!("tls_server_config: the key does not fit the certificate: {e}"))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What identifies a file's content cheaply: its inode, size and modification time.
type Stamp = Option<(u64, u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

/// A web configuration kept current: [`Reloading::current`] re-reads it when the file or one it
/// names has changed.
pub struct Reloading {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    current: Arc<WebConfig>,
    stamps: Vec<Stamp>,
    checked: Instant,
}

/// How often the files are looked at, at most.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl Reloading {
    /// Loads the file; an error here stops the server from starting.
    pub fn new(path: &Path) -> Result<Reloading, WebConfigError> {
        let current = WebConfig::load(path)?;
        let stamps = current.files.iter().map(|f| stamp(f)).collect();
        Ok(Reloading {
            path: path.to_owned(),
            state: Mutex::new(State { current: Arc::new(current), stamps, checked: Instant::now() }),
        })
    }

    /// The configuration in force, re-read first if a file changed since the last look.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() < CHECK_EVERY {
            return state.current.clone();
        }
        state.checked = Instant::now();
        let now: Vec<Stamp> = state.current.files.iter().map(|f| stamp(f)).collect();
        if now == state.stamps {
            return state.current.clone();
        }
        match WebConfig::load(&self.path) {
            Ok(next) if next.tls.is_some() != state.current.tls.is_some() => {
                tracing::warn!("{}: TLS cannot be turned on or off while serving; restart to", self.path.display());
                state.stamps = now;
            }
            Ok(next) => {
                tracing::info!("{}: changed; reloaded", self.path.display());
                state.stamps = next.files.iter().map(|f| stamp(f)).collect();
                state.current = Arc::new(next);
            }
            Err(e) => {
                tracing::warn!("{}: changed but does not load ({e}); serving the last good one", self.path.display());
                state.stamps = now;
            }
        }
        state.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, WebConfigError> {
        let dir = std::env::temp_dir().join(format!("wd-webconfig-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        let r = WebConfig::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn what_is_refused_says_why() {
        let cases = [
            ("nonsense: 1\n", "unknown field"),
            ("tls_server_config:\n  key_file: k\n", "cert_file (or cert) is required"),
            ("tls_server_config:\n  cert: x\n  cert_file: y\n", "not both"),
            ("tls_server_config:\n  cert: x\n  key: y\n  cipher_suites: [A]\n", "cipher_suites is not supported"),
            ("basic_auth_users:\n  alice: plain\n", "not a bcrypt hash"),
            ("http_server_config:\n  headers:\n    X-Evil: 1\n", "X-Evil is not one of"),
            ("rate_limit:\n  interval: 1s\n  burst: 2\n", "rate_limit is not supported"),
        ];
        for (text, want) in cases {
            let e = load(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let empty = load("").unwrap();
        assert!(empty.tls().is_none() && !empty.basic_auth());
        let ok = load("http_server_config:\n  http2: true\n  headers:\n    strict-transport-security: max-age=60\n")
            .unwrap();
        assert_eq!(ok.headers()[0].0, "strict-transport-security");
    }

    #[test]
    fn basic_auth_checks_the_bcrypt_hash() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = load(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        assert!(c.basic_auth());
        assert!(c.check("alice", "s3cret"));
        assert!(c.check("alice", "s3cret"), "cached");
        assert!(!c.check("alice", "wrong"));
        assert!(!c.check("bob", "s3cret"));
    }
}
