//! Where to listen, read from the environment the way deployment tools set it: `HOST` and `PORT`,
//! and `TLS_CERT` / `TLS_KEY` for HTTPS.
//!
//! - `HOST`: an IPv4 or IPv6 address (`::1` or `[::1]`) or a name that resolves (`localhost`);
//!   default `127.0.0.1`.
//! - `PORT`: a port number, `0` for a free one; default: the app's own.
//! - `TLS_CERT` and `TLS_KEY`: PEM files, both or neither. Set on a build without the `tls`
//!   feature they are an error, never a silent plain-HTTP server.
//!
//! A value that does not parse is an [`Error`] naming the variable, never a fallback to a
//! default.
//!
//! # Example
//!
//! ```
//! use nest_core::server::ListenEnv;
//!
//! // With neither HOST nor PORT set, the app's default port on 127.0.0.1:
//! let vars = |name: &str| match name {
//!     "HOST" => Some("::1".to_string()),
//!     _ => None,
//! };
//! let listen = ListenEnv::from_vars(vars, 3000).unwrap();
//! assert_eq!(listen.addr().to_string(), "[::1]:3000");
//! assert!(listen.tls_files().is_none());
//!
//! let bad = ListenEnv::from_vars(|name| (name == "PORT").then(|| "http".to_string()), 3000);
//! assert!(bad.unwrap_err().to_string().contains("PORT"));
//! ```

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where to listen, and whether over HTTPS, from the environment:
///
/// - `HOST`: an IPv4 or IPv6 address (`::1` or `[::1]`) or a name that resolves (`localhost`);
///   default `127.0.0.1`.
/// - `PORT`: a port number, `0` for a free one; default: the app's own.
/// - `TLS_CERT` and `TLS_KEY`: PEM files, both or neither; set on a build without the `tls`
///   feature, an error.
///
/// A value that does not parse is an [`Error`] naming the variable, never a default. Serve with
/// [`NestApp::bind_env`](crate::NestApp::bind_env).
///
/// ```
/// use nest_core::server::ListenEnv;
///
/// let listen = ListenEnv::from_vars(|name| (name == "HOST").then(|| "[::1]".into()), 8080).unwrap();
/// assert_eq!(listen.addr().to_string(), "[::1]:8080");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenEnv {
    addr: SocketAddr,
    tls_files: Option<(PathBuf, PathBuf)>,
}

impl ListenEnv {
    /// Reads `HOST`, `PORT`, `TLS_CERT` and `TLS_KEY` from the process environment; `PORT`
    /// defaults to `default_port`.
    pub fn from_env(default_port: u16) -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok(), default_port)
    }

    /// As [`from_env`](Self::from_env), with the variables looked up by `var` (for tests, or an
    /// app's own configuration source).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        default_port: u16,
    ) -> Result<Self, Error> {
        Self::parse(&var, default_port, cfg!(feature = "tls"))
    }

    fn parse(
        var: &dyn Fn(&str) -> Option<String>,
        default_port: u16,
        tls_built: bool,
    ) -> Result<Self, Error> {
        let port = match var("PORT") {
            None => default_port,
            Some(port) => port.trim().parse::<u16>().map_err(|_| {
                Error::config(format!(
                    "PORT={port:?} is not a port number (0 to 65535; 0 picks a free port)"
                ))
            })?,
        };
        let addr = match var("HOST") {
            None => SocketAddr::from(([127, 0, 0, 1], port)),
            Some(host) => resolve(host.trim(), port)?,
        };
        let tls_files =
            match (var("TLS_CERT"), var("TLS_KEY")) {
                (None, None) => None,
                (Some(_), None) => {
                    return Err(Error::config(
                        "TLS_CERT is set but TLS_KEY is not: HTTPS needs both PEM files",
                    ))
                }
                (None, Some(_)) => {
                    return Err(Error::config(
                        "TLS_KEY is set but TLS_CERT is not: HTTPS needs both PEM files",
                    ))
                }
                (Some(_), Some(_)) if !tls_built => return Err(Error::config(
                    "TLS_CERT and TLS_KEY are set, but nest was built without the `tls` feature: \
                     build with `--features tls` (or unset them to serve plain HTTP)",
                )),
                (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            };
        Ok(Self { addr, tls_files })
    }

    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificate chain and key files (`TLS_CERT`, `TLS_KEY`), when both are set.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_files
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()))
    }
}

/// `host` as an IP address (IPv6 with or without brackets), else as a name resolved by the
/// system (its first address).
fn resolve(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let invalid = |why: String| {
        Error::config(format!(
            "HOST={host:?} is not an IP address or a host name that resolves: {why}"
        ))
    };
    if host.is_empty() || host.contains(['/', ' ', ':']) {
        return Err(invalid("not a host name".into()));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| invalid(e.to_string()))?
        .next()
        .ok_or_else(|| invalid("it has no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn parse(pairs: &[(&str, &str)], tls_built: bool) -> Result<ListenEnv, Error> {
        ListenEnv::parse(&vars(pairs), 3000, tls_built)
    }

    #[test]
    fn defaults_are_loopback_and_the_apps_port() {
        let listen = parse(&[], false).unwrap();
        assert_eq!(listen.addr(), SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(listen.tls_files(), None);
    }

    #[test]
    fn ipv6_hosts_with_and_without_brackets() {
        for host in ["::1", "[::1]", " ::1 "] {
            let listen = parse(&[("HOST", host), ("PORT", "0")], false).unwrap();
            assert_eq!(listen.addr().to_string(), "[::1]:0", "{host:?}");
        }
        let any = parse(&[("HOST", "0.0.0.0"), ("PORT", "8080")], false).unwrap();
        assert_eq!(any.addr(), SocketAddr::from(([0, 0, 0, 0], 8080)));
    }

    #[test]
    fn localhost_resolves() {
        let listen = parse(&[("HOST", "localhost")], false).unwrap();
        assert!(listen.addr().ip().is_loopback(), "{}", listen.addr());
        assert_eq!(listen.addr().port(), 3000);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (pairs, needle) in [
            (&[("PORT", "http")][..], "PORT=\"http\""),
            (&[("PORT", "65536")][..], "PORT=\"65536\""),
            (&[("PORT", "-1")][..], "PORT"),
            (&[("HOST", "not an address")][..], "HOST=\"not an address\""),
            // Refused before any lookup: spaces, a port or a path are never a host name.
            (&[("HOST", "not an address")][..], "not a host name"),
            (&[("HOST", "example.com:80")][..], "not a host name"),
            (&[("HOST", "")][..], "not a host name"),
            (&[("HOST", "1.2.3.4:80")][..], "HOST"),
            (&[("HOST", "")][..], "HOST"),
        ] {
            let err = parse(pairs, true).unwrap_err();
            assert!(err.to_string().contains(needle), "{pairs:?}: {err}");
            assert!(err.is_config(), "{pairs:?}");
        }
    }

    #[test]
    fn tls_files_come_in_pairs_and_need_the_feature() {
        let both = [("TLS_CERT", "c.pem"), ("TLS_KEY", "k.pem")];
        let listen = parse(&both, true).unwrap();
        assert_eq!(
            listen.tls_files(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
        );
        let err = parse(&both, false).unwrap_err().to_string();
        assert!(err.contains("without the `tls` feature"), "{err}");
        let err = parse(&[("TLS_CERT", "c.pem")], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLS_KEY is not"), "{err}");
        let err = parse(&[("TLS_KEY", "k.pem")], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLS_CERT is not"), "{err}");
    }
}
