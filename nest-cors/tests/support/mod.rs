//! Test support: a real hyper 1 server on `127.0.0.1:0` and a raw HTTP/1.1 client, so the
//! assertions are about the bytes on the wire, and [`assert_cors`] for the CORS headers.

#![allow(dead_code, unreachable_pub, unused_imports)] // each test binary uses part of it

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use nest_cors::{AllowOrigin, CorsBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

mod cors_headers;

pub use cors_headers::{assert_cors, CorsHeaders, Headers, DEFAULT_METHODS};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long any single wire exchange may take before the test fails (not a sleep).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The page origin the tests allow.
pub const APP: &str = "https://app.example";
/// An origin no test allows.
pub const EVIL: &str = "https://evil.example";

/// A credentialed single-page app on `APP` that may read `x-request-id`: the setup tested on
/// a hyper server (`wire.rs`) and on an axum router (`axum.rs`).
pub fn credentialed_spa() -> CorsBuilder {
    nest_cors::CorsLayer::builder()
        .origin(AllowOrigin::exact(APP))
        .credentials(true)
        .exposed_headers(["x-request-id"])
}

/// What an actual request from `APP` gets from [`credentialed_spa`].
pub fn credentialed_answer() -> CorsHeaders<'static> {
    CorsHeaders::allow(APP)
        .credentials()
        .expose("x-request-id")
        .vary("Origin")
}

/// What a preflight from `APP` asking for `content-type` gets from [`credentialed_spa`].
pub fn credentialed_preflight_answer() -> CorsHeaders<'static> {
    CorsHeaders::preflight(APP)
        .credentials()
        .allow_headers("content-type")
        .vary("Origin, Access-Control-Request-Headers")
}

/// Serves `svc` over HTTP/1.1 on an ephemeral loopback port; returns the address.
pub async fn serve<S, B>(svc: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A small app standing in for a router with its fallbacks:
/// - `GET /` → 200 `ok`; `DELETE /` → 405
/// - `OPTIONS /options` → 200 `options handler` (a plain OPTIONS route)
/// - `GET /boom` → 500
/// - `GET /vary` → 200 with its own `Vary: Accept-Encoding`
/// - anything else → 404
pub async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str();
    let path = req.uri().path();
    let (status, body) = match (method, path) {
        ("GET", "/") => (StatusCode::OK, "ok"),
        ("DELETE", "/") => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        ("OPTIONS", "/options") => (StatusCode::OK, "options handler"),
        ("GET", "/boom") => (StatusCode::INTERNAL_SERVER_ERROR, "boom"),
        ("GET", "/vary") => (StatusCode::OK, "varies"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    if path == "/vary" {
        res.headers_mut().insert(
            http::header::VARY,
            HeaderValue::from_static("Accept-Encoding"),
        );
    }
    Ok(res)
}

/// A request as sent on the wire.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
}

impl RawRequest {
    pub fn new(method: &'static str, path: &'static str) -> Self {
        Self {
            method,
            path,
            headers: Vec::new(),
        }
    }

    pub fn get(path: &'static str) -> Self {
        Self::new("GET", path)
    }

    /// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn preflight(path: &'static str, origin: &str, method: &str) -> Self {
        Self::new("OPTIONS", path)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn origin(self, origin: &str) -> Self {
        self.header("Origin", origin)
    }

    /// Sends the request on a fresh connection and reads the whole response.
    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        tokio::time::timeout(TIMEOUT, self.exchange(addr))
            .await
            .expect("the server answered in time")
    }

    async fn exchange(&self, addr: SocketAddr) -> RawResponse {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        RawResponse::parse(&bytes)
    }
}

/// A response as read from the wire: status, header lines in order, body (de-chunked).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> Self {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let raw_body = &bytes[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(raw_body)
        } else {
            raw_body.to_vec()
        };
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

impl Headers for RawResponse {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
