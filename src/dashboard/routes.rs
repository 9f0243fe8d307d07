//! The HTTP routes: `/` dashboard and its `/assets/`, `/api/snapshot`, `/api/events` (SSE),
//! `/metrics`, `/healthz`, and `/login` for token-protected servers.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::Event;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::json;
use tokio_stream::wrappers::WatchStream;

use super::metrics::RejectLabel;
use super::reads::{Busy, Outcome};
use super::{AppState, ProviderError, SnapshotProvider, auth, guard};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/login", post(auth::login))
        .route("/assets/dashboard.js", get(|| asset("text/javascript; charset=utf-8", DASHBOARD_JS)))
        .route("/assets/dashboard.css", get(|| asset("text/css; charset=utf-8", DASHBOARD_CSS)))
        .route("/assets/login.css", get(|| asset("text/css; charset=utf-8", LOGIN_CSS)))
        // Outermost last: the head limit, the per-address request cap, then the security
        // headers on every answer, then the Host / cross-site / body rules, then the token.
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), per_address))
        .layer(axum::middleware::from_fn(limit_head))
        .with_state(state)
}

/// `431` for a request head over 64 KiB. hyper's buffer limit catches most, but not a head that
/// arrives whole in one read; every route here is a GET with a short query.
async fn limit_head(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let size = request.method().as_str().len()
        + request.uri().to_string().len()
        + request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>();
    if size > super::MAX_REQUEST_HEAD {
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request head over 64 KiB\n").into_response();
    }
    next.run(request).await
}

/// The per-address cap on requests and streams in flight (see `clients`): every route but
/// `/healthz` takes a slot, held with the response body until it is sent or the stream ends.
async fn per_address(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tag = request.extensions().get::<super::clients::ConnTag>().copied();
    let (Some(tag), false) = (tag, request.uri().path() == "/healthz") else {
        return next.run(request).await;
    };
    let Ok(slot) = state.clients.request(tag) else {
        state.metrics.rejected.get_or_create(&RejectLabel { reason: "max_connections_per_ip" }).inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5"), (header::CONNECTION, "close")],
            "too many requests and streams from this address, retry\n",
        )
            .into_response();
    };
    next.run(request).await.map(|body| axum::body::Body::new(super::clients::Holding::new(body, slot)))
}

const DASHBOARD: &str = include_str!("assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
const LOGIN_CSS: &str = include_str!("assets/login.css");

async fn dashboard() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(DASHBOARD)).into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Runs a provider call through `reads` (bounded, shared, never multiplied by clients that
/// hang up) and turns its outcome into an HTTP status.
async fn call<F>(state: &AppState, key: String, f: F) -> Result<bytes::Bytes, Response>
where
    F: FnOnce(&dyn SnapshotProvider) -> Result<String, ProviderError> + Send + 'static,
{
    let text = |status, msg: Arc<str>| (status, format!("{msg}\n")).into_response();
    match state.reads.read(key, state.provider.clone(), f).await {
        Ok(Outcome::Ok(body)) => Ok(body),
        Ok(Outcome::BadRequest(msg)) => Err(text(StatusCode::BAD_REQUEST, msg)),
        Ok(Outcome::Forbidden(msg)) => Err(text(StatusCode::FORBIDDEN, msg)),
        Ok(Outcome::Internal(msg)) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, msg)),
        Err(Busy) => {
            state.metrics.rejected.get_or_create(&RejectLabel { reason: "busy" }).inc();
            Err((StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "busy reading sockets, retry\n")
                .into_response())
        }
    }
}

async fn snapshot(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let raw = request.uri().query().unwrap_or("").to_owned();
    let Ok(Query(query)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) else {
        return (StatusCode::BAD_REQUEST, "malformed query string\n").into_response();
    };
    match call(&state, format!("snapshot?{raw}"), move |p| p.snapshot(&query)).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let sockets = match call(&state, "metrics".into(), |p| p.metrics()).await {
        Ok(text) => text,
        Err(r) => return r,
    };
    let mut own = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut own, &state.metrics.registry()).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // The shared socket gauges as they are (a reference, not a copy), then this server's own.
    let chunks = [Ok::<_, Infallible>(sockets), Ok(bytes::Bytes::from(own))];
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    ([(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], body).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let k = &state.config.keepalive;
    let failures: Vec<_> = state.probe.iter().filter(|o| !o.ok()).collect();
    let body = json!({
        "status": "ok",
        "keepalive": {
            "enabled": k.enabled,
            "idle_s": k.idle.as_secs_f64(),
            "interval_s": k.interval.as_secs_f64(),
            "count": k.count,
            "user_timeout_ms": k.user_timeout.filter(|_| k.enabled).map(|t| t.as_millis() as u64),
            "detect_after_s": k.detect_after().as_secs_f64(),
            "options": &*state.probe,
            "all_applied": failures.is_empty(),
        },
        "watchdog": state.watchdog.as_ref().map(|w| json!({
            "deadline_s": w.deadline().as_secs_f64(),
            "supported": webui_doctor_server::Watchdog::supported(),
            "ended": w.ended(),
        })),
        "heartbeat_s": state.config.heartbeat.as_secs_f64(),
        "snapshot_period_s": state.config.snapshot_period.as_secs_f64(),
        "connections_open": state.metrics.open.get(),
        "sse_clients": state.metrics.sse_clients.get(),
        "token_required": state.token.is_some(),
        "tls": state.web.as_ref().is_some_and(|w| w.current().tls().is_some()),
        "basic_auth": state.web.as_ref().is_some_and(|w| w.current().basic_auth()),
    });
    axum::Json(body).into_response()
}

/// Keeps the SSE gauge and the client permit for as long as the stream lives; dropped when the
/// client goes (FIN, RST or a keepalive timeout) and hyper drops the response body.
struct ClientSlot {
    metrics: super::ServerMetrics,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.metrics.sse_clients.dec();
    }
}

async fn events(State(state): State<AppState>) -> Response {
    let Ok(permit) = state.sse_permits.clone().try_acquire_owned() else {
        state.metrics.rejected.get_or_create(&RejectLabel { reason: "max_sse_clients" }).inc();
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "too many SSE clients, retry\n")
            .into_response();
    };
    state.metrics.sse_clients.inc();
    let slot = ClientSlot { metrics: state.metrics.clone(), _permit: permit };
    let rx = state.hub.subscribe(state.config.snapshot_period);
    let snapshots = WatchStream::from_changes(rx).filter_map(move |frame| {
        let _slot = &slot;
        std::future::ready(
            frame
                .map(|f| Ok::<_, Infallible>(Event::default().event(crate::render::json::STREAM_EVENT).data(&*f.json))),
        )
    });
    let sse = webui_doctor_server::sse::stream(snapshots, state.config.heartbeat, state.shutdown.clone());
    let mut response = ([("x-accel-buffering", "no"), ("cache-control", "no-store")], sse).into_response();
    response.extensions_mut().insert(super::handoff::Stream);
    response
}
