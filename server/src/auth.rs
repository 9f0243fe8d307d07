//! Access control for non-loopback binds: a bearer token on every route but `/healthz`.
//! Browsers log in once through a form; the token then rides in an HttpOnly, SameSite=Strict
//! cookie, so page scripts never see it and other sites cannot send it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::AppState;

pub const COOKIE: &str = "webui_doctor_token";

/// Compares in time independent of where the strings first differ.
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(bearer) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Middleware: lets `/healthz` and `/login` through, checks the token everywhere else.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.token.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == "/healthz" || path == "/login" {
        return next.run(request).await;
    }
    if presented(request.headers()).is_some_and(|t| token_matches(expected, t)) {
        return next.run(request).await;
    }
    let mut response = if path == "/" {
        (StatusCode::UNAUTHORIZED, Html(login_page(false))).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "401 Unauthorized: send Authorization: Bearer TOKEN\n").into_response()
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: a right token sets the cookie and goes to the dashboard.
pub async fn login(State(state): State<AppState>, axum::Form(form): axum::Form<LoginForm>) -> Response {
    match state.token.as_deref() {
        Some(expected) if token_matches(expected, form.token.trim()) => {
            let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", form.token.trim());
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => (StatusCode::UNAUTHORIZED, Html(login_page(true))).into_response(),
        None => Redirect::to("/").into_response(),
    }
}

fn login_page(failed: bool) -> String {
    let note = if failed { "<p class=\"err\">That token is not right.</p>" } else { "" };
    include_str!("../assets/login.html").replace("<!--NOTE-->", note)
}
