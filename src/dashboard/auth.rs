//! Access control for token-protected servers: a bearer token on every route but `/healthz`,
//! `/login` and the static assets the log-in page needs.
//!
//! Browsers log in once through a form. The cookie they get is a random session id with an
//! expiry, never the token: cookies are not isolated by port, so every other server on the same
//! host name would receive it, and the token is also the Prometheus scraper's credential. The
//! cookie is HttpOnly (page scripts never see it), SameSite=Strict (other sites cannot send it)
//! and `Secure` when the request came through a TLS-terminating proxy (`X-Forwarded-Proto:
//! https`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::clients::ConnTag;
use super::metrics::RefusedLabel;

pub const COOKIE: &str = "webui_doctor_session";

/// The most a log-in form may take: a token and its field name.
pub const MAX_LOGIN_BODY: usize = 1024;

/// Sessions kept at once; past it, the oldest is forgotten.
const MAX_SESSIONS: usize = 1024;

/// A secret (the access token) and what a guess is compared with: a keyed 64-bit digest of it
/// (SipHash under a key drawn at start, unknown to any client). Every guess is hashed the same
/// way and the digests compared in constant time, so neither where a guess first differs nor
/// how long the secret is shows in the time an answer takes; only a guess whose digest matches
/// is then compared byte for byte (in constant time too).
pub struct Secret {
    text: String,
    key: std::hash::RandomState,
    digest: u64,
}

impl Secret {
    pub fn new(text: &str) -> Secret {
        use std::hash::BuildHasher;
        let key = std::hash::RandomState::new();
        Secret { digest: key.hash_one(text.as_bytes()), text: text.to_owned(), key }
    }

    pub fn matches(&self, given: &str) -> bool {
        use std::hash::BuildHasher;
        let digest = self.key.hash_one(given.as_bytes());
        bool::from(digest.ct_eq(&self.digest)) && bool::from(self.text.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// Compares in time independent of where the strings first differ (for session ids, which all
/// have one length).
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Log-in sessions: random ids with an expiry.
pub struct Sessions {
    lifetime: Duration,
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions { lifetime, live: Mutex::default() }
    }

    /// A new session id (256 random bits, hex), or `None` if the system has no randomness.
    fn create(&self) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        live.retain(|_, expires| *expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + self.lifetime);
        Some(id)
    }

    fn valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        // Constant-time over the candidates: the id is a secret too.
        live.iter().any(|(k, expires)| token_matches(k, id) && *expires > Instant::now())
    }
}

/// `Authorization: Bearer TOKEN`, the scheme matched case-insensitively (RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The client address a request came from (set by the accept loop).
fn peer_of(request: &Request) -> Option<ConnTag> {
    request.extensions().get::<ConnTag>().copied()
}

/// `429 Too Many Requests` for an address that failed to log in too often.
fn too_many(retry_after: u64) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, "429: too many failed log-ins from this address; wait and retry\n")
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Counts and logs a failed log-in (a wrong form or `Bearer` token) from `tag`'s address.
fn failed(state: &AppState, tag: Option<ConnTag>, how: &str) {
    state.metrics.refused.get_or_create(&RefusedLabel { reason: "login_failed" }).inc();
    match tag {
        Some(tag) => {
            let n = state.clients.failed_login(tag.peer.ip());
            tracing::warn!("failed log-in ({how}) from {} ({n} in the last minute)", tag.peer);
        }
        None => tracing::warn!("failed log-in ({how})"),
    }
}

/// `Authorization: Basic BASE64(user:password)`.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: lets `/healthz`, `/login` and the assets through, and everywhere else asks for
/// what the server was given: the token (`Bearer`, or a log-in session), the web
/// configuration's `basic_auth_users` (`Basic`), either where both are set. An address that
/// failed too often gets 429 until its window ends, without its credentials being checked.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let web = state.web.as_ref().map(|w| w.current());
    let users = web.filter(|w| w.basic_auth());
    if state.token.is_none() && users.is_none() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if path == "/healthz" || path == "/login" || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    let tag = peer_of(&request);
    let headers = request.headers();
    let pass = |state: &AppState| {
        if let Some(tag) = tag {
            state.clients.authenticated(tag);
        }
    };
    if state.token.is_some() && session_cookie(headers).is_some_and(|id| state.sessions.valid(id)) {
        pass(&state);
        return next.run(request).await;
    }
    let given_bearer = bearer(headers).map(str::to_owned);
    let given_basic = basic(headers);
    let offered = given_bearer.is_some() || given_basic.is_some();
    if offered && let Some(wait) = tag.and_then(|t| state.clients.locked_out(t.peer.ip())) {
        state.metrics.refused.get_or_create(&RefusedLabel { reason: "login_rate_limited" }).inc();
        return too_many(wait);
    }
    let token_ok = match (&state.token, &given_bearer) {
        (Some(expected), Some(t)) => expected.matches(t),
        _ => false,
    };
    let basic_ok = match (&users, given_basic) {
        // bcrypt is slow by design: off the async threads.
        (Some(users), Some((user, password))) => {
            let users = users.clone();
            tokio::task::spawn_blocking(move || users.check(&user, &password)).await.unwrap_or(false)
        }
        _ => false,
    };
    if token_ok || basic_ok {
        pass(&state);
        return next.run(request).await;
    }
    if offered {
        failed(&state, tag, if given_bearer.is_some() { "Bearer" } else { "Basic" });
    }
    let mut response = if path == "/" && state.token.is_some() {
        (StatusCode::UNAUTHORIZED, Html(login_page(false))).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "401 Unauthorized: send credentials (Authorization: Bearer TOKEN, or Basic)\n")
            .into_response()
    };
    if state.token.is_some() {
        response.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if users.is_some() {
        response.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"webui-doctor\", charset=\"UTF-8\""),
        );
    }
    response
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

/// A response that also ends the connection (its body was not read whole).
fn closing(status: StatusCode, text: &'static str) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `POST /login`: a right token starts a session and goes to the dashboard. The body must arrive
/// within the body timeout and fit in 1 KiB; else the connection is closed.
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    let tag = peer_of(&request);
    if let Some(wait) = tag.and_then(|t| state.clients.locked_out(t.peer.ip())) {
        state.metrics.refused.get_or_create(&RefusedLabel { reason: "login_rate_limited" }).inc();
        return too_many(wait);
    }
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(Body::new(body), MAX_LOGIN_BODY);
    let bytes = match tokio::time::timeout(state.config.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            state.metrics.refused.get_or_create(&RefusedLabel { reason: "body_too_large" }).inc();
            return closing(StatusCode::PAYLOAD_TOO_LARGE, "413: the log-in form is at most 1 KiB\n");
        }
        Err(_) => {
            state.metrics.refused.get_or_create(&RefusedLabel { reason: "body_timeout" }).inc();
            return closing(StatusCode::REQUEST_TIMEOUT, "408: the request body took too long\n");
        }
    };
    let Some(expected) = state.token.clone() else {
        return Redirect::to("/").into_response();
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&bytes) else {
        return (StatusCode::BAD_REQUEST, "400: expected a form with a token field\n").into_response();
    };
    if !expected.matches(form.token.trim()) {
        failed(&state, tag, "form");
        return (StatusCode::UNAUTHORIZED, Html(login_page(true))).into_response();
    }
    if let Some(tag) = tag {
        state.clients.authenticated(tag);
    }
    let Some(id) = state.sessions.create() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "500: no randomness for a session id\n").into_response();
    };
    let tls = tag.is_some_and(|t| t.tls)
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        state.config.session_lifetime.as_secs(),
        if tls { "; Secure" } else { "" }
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn login_page(failed: bool) -> String {
    let note = if failed { "<p class=\"err\">That token is not right.</p>" } else { "" };
    include_str!("assets/login.html").replace("<!--NOTE-->", note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        for value in ["Bearer abc", "bearer abc", "BEARER   abc", "bEaReR\tabc"] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            assert_eq!(bearer(&h), Some("abc"), "{value}");
        }
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearerabc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_match_only_themselves() {
        let s = Secret::new("0123456789abcdef0123");
        assert!(s.matches("0123456789abcdef0123"));
        for wrong in ["", "0", "0123456789abcdef012", "0123456789abcdef01234", "1123456789abcdef0123"] {
            assert!(!s.matches(wrong), "{wrong}");
        }
    }

    #[test]
    fn sessions_expire_and_are_random() {
        let s = Sessions::new(Duration::from_millis(50));
        let a = s.create().unwrap();
        let b = s.create().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a) && !s.valid("nope"));
        std::thread::sleep(Duration::from_millis(80));
        assert!(!s.valid(&a));
    }
}
