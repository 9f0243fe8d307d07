//! What keeps a web page or another local user from using this server against its owner:
//!
//! - **DNS rebinding.** A page on `attacker.example` can re-point its own name at 127.0.0.1 and
//!   then read this server as if it were same-origin. Its requests still carry `Host:
//!   attacker.example`, so without a token only `Host` values that name this server are served
//!   (the listening address, `localhost`, `127.0.0.1`, `[::1]`, with or without the port, and
//!   the operator's `allowed_hosts`); anything else gets 403. With a token the token decides.
//! - **Cross-site requests.** A request the browser marks `Sec-Fetch-Site: cross-site`, or whose
//!   `Origin` is not this server's, is refused on every route but the page itself, its assets and
//!   `/healthz` (a link from elsewhere may still open the dashboard).
//! - **Response headers** on everything: `X-Content-Type-Options: nosniff`, a CSP without
//!   `'unsafe-inline'` and with `frame-ancestors 'none'` (no framing, no injected script).
//! - **Request bodies.** Only `POST /login` takes one (see `auth`); any other request that
//!   announces a body is refused and the connection closed, so a trickled body holds no slot.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The `Host` values served without a token, lower-case.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
    /// The bound port as text, for `NAME:PORT`.
    port: String,
}

impl AllowedHosts {
    pub fn new(bind: IpAddr, port: u16, extra: &[String]) -> AllowedHosts {
        let bind = match bind {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].iter().map(|s| s.to_string()).collect();
        names.push(bind);
        names.extend(extra.iter().map(|h| h.trim().to_ascii_lowercase()));
        AllowedHosts { names, port: port.to_string() }
    }

    /// Whether a `Host` header value names this server: a known name, alone or with our port.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        self.names.iter().any(|name| {
            host == *name
                || host.strip_prefix(name.as_str()).and_then(|r| r.strip_prefix(':')) == Some(self.port.as_str())
        })
    }
}

/// The request's `Host` (HTTP/1.1) or URI authority, if any.
fn host_of(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Routes any site may link to: the page itself, its static assets, the health check.
fn open_route(path: &str) -> bool {
    path == "/" || path == "/healthz" || path.starts_with("/assets/")
}

/// Whether the browser says this request comes from another site.
fn cross_site(headers: &HeaderMap, host: Option<&str>) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
    let Some(host) = host.map(str::to_ascii_lowercase) else { return true };
    origin != format!("http://{host}") && origin != format!("https://{host}")
}

fn forbidden(why: &'static str) -> Response {
    (StatusCode::FORBIDDEN, why).into_response()
}

/// Middleware: the `Host`, cross-site and request-body rules above.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Two `Host` headers: which one a proxy and this server each believe is anyone's guess.
    if request.headers().get_all(header::HOST).iter().nth(1).is_some() {
        state.metrics.refused.get_or_create(&super::metrics::RefusedLabel { reason: "duplicate_host" }).inc();
        return (StatusCode::BAD_REQUEST, "400 Bad Request: more than one Host header\n").into_response();
    }
    let host = host_of(&request);
    let credentials = state.token.is_some() || state.web.as_ref().is_some_and(|w| w.current().basic_auth());
    if !credentials && !host.is_some_and(|h| state.hosts.allows(h)) {
        state.metrics.refused.get_or_create(&super::metrics::RefusedLabel { reason: "host" }).inc();
        return forbidden("403 Forbidden: this Host is not served (add the name to the server's allowed hosts)\n");
    }
    let path = request.uri().path();
    if !open_route(path) && cross_site(request.headers(), host) {
        state.metrics.refused.get_or_create(&super::metrics::RefusedLabel { reason: "cross_site" }).inc();
        return forbidden("403 Forbidden: cross-site request\n");
    }
    if path != "/login" && announces_body(request.headers()) {
        let mut r = (StatusCode::PAYLOAD_TOO_LARGE, "413: only POST /login takes a request body\n").into_response();
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    next.run(request).await
}

/// A request with a body: a non-zero `Content-Length`, or any `Transfer-Encoding`.
pub fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// The policy every response carries: scripts and styles only from this server, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Middleware: security headers on every response, then those of the web configuration's
/// `http_server_config.headers` (which replace ours of the same name).
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(web) = &state.web {
        for (name, value) in web.current().headers() {
            h.insert(name.clone(), value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_name_this_server() {
        let hosts = AllowedHosts::new("127.0.0.1".parse().unwrap(), 8787, &["Dash.Example".into()]);
        for ok in ["127.0.0.1:8787", "localhost:8787", "LOCALHOST", "[::1]:8787", "dash.example:8787", "127.0.0.1"] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in ["attacker.example:8787", "127.0.0.1:8788", "localhost.attacker.example", "127.0.0.1:87870", ""] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let v6 = AllowedHosts::new("::1".parse().unwrap(), 9000, &[]);
        assert!(v6.allows("[::1]:9000"));
        assert!(!v6.allows("::1:9000"));
    }

    #[test]
    fn cross_site_signals() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h, Some("127.0.0.1:8787")));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8787"));
        assert!(!cross_site(&h, Some("127.0.0.1:8787")));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(cross_site(&h, Some("127.0.0.1:8787")));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h, Some("127.0.0.1:8787")));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h, Some("127.0.0.1:8787")));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h, Some("127.0.0.1:8787")));
    }
}
