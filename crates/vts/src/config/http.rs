//! `[http]`: where the HTTP server listens (`--http`, `VTS_HTTP`, or off), HTTPS from PEM
//! files, the scrape token, and the request bounds.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::env_override;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HttpSection {
    /// `ADDR:PORT`, or `off`.
    listen: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// When set, `GET /metrics` needs `Authorization: Bearer TOKEN`.
    metrics_token: Option<String>,
    request_timeout_secs: u64,
    header_timeout_secs: u64,
    body_limit_bytes: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            metrics_token: None,
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            body_limit_bytes: 1024 * 1024,
        }
    }
}

/// Where the HTTP server listens: an address, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpListen {
    Off,
    At(std::net::SocketAddr),
}

impl std::str::FromStr for HttpListen {
    type Err = String;
    fn from_str(s: &str) -> Result<HttpListen, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(HttpListen::Off);
        }
        s.parse()
            .map(HttpListen::At)
            .map_err(|_| format!("{s:?}: an address and port (127.0.0.1:8080, [::1]:8080) or off"))
    }
}

/// A secret from the configuration: used as a `&str`, shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The HTTP server's settings, resolved (`None` in [`Settings`] when it is off).
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) listen: std::net::SocketAddr,
    pub(crate) tls: Option<web::Tls>,
    pub(crate) metrics_token: Option<Secret>,
    pub(crate) request_timeout: Duration,
    pub(crate) header_timeout: Duration,
    pub(crate) body_limit: usize,
}

/// The `[http]` section with `--http`/`VTS_HTTP` over its `listen`; `None` when off.
pub(super) fn http_settings(
    mut http: HttpSection,
    flag: Option<HttpListen>,
) -> Result<Option<HttpSettings>, String> {
    env_override(
        &mut http.request_timeout_secs,
        "VTS_HTTP_REQUEST_TIMEOUT_SECS",
    )?;
    env_override(
        &mut http.header_timeout_secs,
        "VTS_HTTP_HEADER_TIMEOUT_SECS",
    )?;
    env_override(&mut http.body_limit_bytes, "VTS_HTTP_BODY_LIMIT_BYTES")?;
    if let Ok(token) = std::env::var("VTS_HTTP_METRICS_TOKEN") {
        http.metrics_token = Some(token);
    }
    let listen = match flag {
        Some(l) => l,
        None => http
            .listen
            .parse()
            .map_err(|e| format!("http.listen: {e}"))?,
    };
    let HttpListen::At(listen) = listen else {
        return Ok(None);
    };
    if http.request_timeout_secs == 0 || http.header_timeout_secs == 0 {
        return Err(
            "http.request_timeout_secs and http.header_timeout_secs must be above 0".into(),
        );
    }
    if http.body_limit_bytes < 1024 {
        return Err(format!(
            "http.body_limit_bytes must be at least 1024 (got {})",
            http.body_limit_bytes
        ));
    }
    let tls = match (http.tls_cert, http.tls_key) {
        (Some(cert), Some(key)) => Some(web::Tls { cert, key }),
        (None, None) => None,
        _ => return Err("http.tls_cert and http.tls_key go together: set both or neither".into()),
    };
    let metrics_token = match http.metrics_token {
        Some(t) if t.trim().len() < 16 => {
            return Err("http.metrics_token must be at least 16 characters".into());
        }
        Some(t) => Some(Secret(t.trim().to_string())),
        None => None,
    };
    Ok(Some(HttpSettings {
        listen,
        tls,
        metrics_token,
        request_timeout: Duration::from_secs(http.request_timeout_secs),
        header_timeout: Duration::from_secs(http.header_timeout_secs),
        body_limit: http.body_limit_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_listen_is_an_address_or_off() {
        assert_eq!("off".parse::<HttpListen>().unwrap(), HttpListen::Off);
        assert_eq!(
            " [::1]:9090 ".parse::<HttpListen>().unwrap(),
            HttpListen::At("[::1]:9090".parse().unwrap())
        );
        let e = "localhost:80".parse::<HttpListen>().unwrap_err();
        assert!(e.contains("or off"), "{e}");
        let off = http_settings(HttpSection::default(), Some(HttpListen::Off)).unwrap();
        assert!(off.is_none());
    }

    #[test]
    fn http_settings_refuse_half_a_tls_pair_and_short_tokens() {
        let half = HttpSection {
            tls_cert: Some("/x.pem".into()),
            ..HttpSection::default()
        };
        let e = http_settings(half, None).unwrap_err();
        assert!(e.contains("tls_cert and http.tls_key"), "{e}");
        let short = HttpSection {
            metrics_token: Some("short".into()),
            ..HttpSection::default()
        };
        let e = http_settings(short, None).unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        let token = HttpSection {
            metrics_token: Some("a-long-enough-scrape-token".into()),
            ..HttpSection::default()
        };
        let s = http_settings(token, None).unwrap().unwrap();
        assert!(
            !format!("{s:?}").contains("scrape-token"),
            "Debug hides the token"
        );
        let e = toml::from_str::<super::super::FileConfig>("[http]\nlistne = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
    }
}
