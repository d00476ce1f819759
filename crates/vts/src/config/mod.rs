//! Settings, layered: built-in defaults < the TOML file (`--config`) < environment variables
//! (`VTS_…`) < command-line flags. Unknown keys in the file are an error; a bad value names
//! its key and where it came from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proxy::{ListenerSpec, ProxyConfig};
use serde::Deserialize;

mod api;
mod http;
mod sip;
mod trace;
mod webhooks;

use api::{ApiSection, api_settings};
pub(crate) use http::{HttpListen, HttpSettings};
use http::{HttpSection, http_settings};
use sip::SipSection;
pub(crate) use trace::TraceSettings;
use trace::{EventsSection, TraceSection, hep_target, trace_settings};
pub(crate) use webhooks::WebhookSettings;
use webhooks::{WebhooksSection, webhook_settings};

/// The options every subcommand takes (`vts --data-dir DIR --db URL --config FILE ...`):
/// where the settings come from.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// Directory for the SQLite database, the control socket and local state.
    #[arg(long, global = true, env = "VTS_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://... (default: SQLite in the data directory).
    /// Its value may hold a password: `--help` never shows it.
    #[arg(
        long,
        global = true,
        env = "VTS_DB",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) db: Option<String>,
    /// TOML configuration file (unknown keys are an error).
    #[arg(long, global = true, env = "VTS_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    db: Option<String>,
    #[serde(default)]
    sip: SipSection,
    #[serde(default)]
    cdr: CdrSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    events: EventsSection,
    #[serde(default)]
    trace: TraceSection,
    #[serde(default)]
    api: ApiSection,
    #[serde(default)]
    webhooks: WebhooksSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CdrSection {
    batch_size: usize,
    flush_interval_ms: u64,
    memory_queue: usize,
    log_max_mb: u64,
}

impl Default for CdrSection {
    fn default() -> Self {
        CdrSection {
            batch_size: 500,
            flush_interval_ms: 200,
            memory_queue: 100_000,
            log_max_mb: 1024,
        }
    }
}

/// Everything a command needs, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    /// Its `Debug` hides the password.
    pub(crate) db_url: DbUrl,
    pub(crate) listen: Vec<ListenerSpec>,
    pub(crate) proxy: ProxyConfig,
    pub(crate) cdr_batch: usize,
    pub(crate) cdr_flush: Duration,
    /// CDRs kept in memory while the database refuses writes; past it they wait in the
    /// write-ahead log only.
    pub(crate) cdr_memory_queue: usize,
    /// The write-ahead log's bound on disk: past it (the database away that long) new
    /// calls are refused until the waiting CDRs are written.
    pub(crate) cdr_log_max_bytes: u64,
    /// The HTTP server (health, metrics); `None`: off.
    pub(crate) http: Option<HttpSettings>,
    /// How long events are kept; `None`: for ever.
    pub(crate) events_retention: Option<Duration>,
    /// HEPv3 export of every SIP message; `None`: off.
    pub(crate) hep: Option<telemetry::hep::Target>,
    /// Stored SIP traces; `None`: off.
    pub(crate) traces: Option<TraceSettings>,
    /// The REST API's rates and the hosts customers' webhooks may point at.
    pub(crate) api: web::api::Config,
    pub(crate) webhooks: WebhookSettings,
}

/// The database URL: used as a `&str`, but its `Debug` (so every `{:?}` of the settings)
/// shows it with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DbUrl(pub(crate) String);

impl std::ops::Deref for DbUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

/// A database URL with its password replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn env_override<T: std::str::FromStr>(field: &mut T, var: &str) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    if let Ok(v) = std::env::var(var) {
        *field = v
            .parse()
            .map_err(|e| format!("environment variable {var}={v:?}: {e}"))?;
    }
    Ok(())
}

impl Settings {
    /// Resolves the layers. `listen_flags` are `serve --sip` values (empty when not given),
    /// `http_flag` is `serve --http` (or `VTS_HTTP`).
    pub(crate) fn load(
        global: &Global,
        listen_flags: &[ListenerSpec],
        http_flag: Option<HttpListen>,
    ) -> Result<Settings, String> {
        let file = match &global.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let sip = file.sip;
        let mut cdr = file.cdr;
        let http = http_settings(file.http, http_flag)?;
        let webhooks = webhook_settings(file.webhooks)?;
        let mut api = api_settings(file.api)?;
        api.webhook_hosts = webhooks.customer_hosts.clone();
        let mut events = file.events;
        let traces = trace_settings(&file.trace)?;
        let hep = hep_target(file.trace)?;
        env_override(&mut events.retention_days, "VTS_EVENTS_RETENTION_DAYS")?;
        env_override(&mut cdr.batch_size, "VTS_CDR_BATCH_SIZE")?;
        env_override(&mut cdr.flush_interval_ms, "VTS_CDR_FLUSH_INTERVAL_MS")?;
        env_override(&mut cdr.memory_queue, "VTS_CDR_MEMORY_QUEUE")?;
        env_override(&mut cdr.log_max_mb, "VTS_CDR_LOG_MAX_MB")?;

        // --data-dir and --db (and their VTS_DATA_DIR / VTS_DB) come through clap, which
        // already lets the flag win over the environment.
        let data_dir = global
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./vts-data"));
        let db_url = DbUrl(
            global
                .db
                .clone()
                .or(file.db)
                .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("vts.db").display())),
        );
        if cdr.batch_size == 0 {
            return Err("cdr.batch_size must be at least 1".into());
        }
        if cdr.log_max_mb == 0 {
            return Err("cdr.log_max_mb must be at least 1 (MiB)".into());
        }
        if cdr.memory_queue < cdr.batch_size {
            return Err(format!(
                "cdr.memory_queue ({}) must be at least cdr.batch_size ({})",
                cdr.memory_queue, cdr.batch_size
            ));
        }
        let (listen, proxy) = sip::resolve(sip, listen_flags)?;
        Ok(Settings {
            data_dir,
            db_url,
            listen,
            proxy,
            cdr_batch: cdr.batch_size,
            cdr_flush: Duration::from_millis(cdr.flush_interval_ms),
            cdr_memory_queue: cdr.memory_queue,
            cdr_log_max_bytes: cdr.log_max_mb.saturating_mul(1024 * 1024),
            http,
            hep,
            traces,
            events_retention: (events.retention_days > 0)
                .then(|| Duration::from_secs(u64::from(events.retention_days) * 86_400)),
            api,
            webhooks,
        })
    }

    /// The control socket of a running switch.
    pub(crate) fn control_socket(&self) -> PathBuf {
        self.data_dir.join("vts.sock")
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://vts:secret@127.0.0.1:5432/vts"),
            "postgres://vts:***@127.0.0.1:5432/vts"
        );
        assert_eq!(
            redact("sqlite://./vts-data/vts.db"),
            "sqlite://./vts-data/vts.db"
        );
        let g = Global {
            data_dir: Some("/tmp/x".into()),
            db: Some("postgres://vts:s3cret-pw@127.0.0.1/vts".into()),
            config: None,
        };
        let debug = format!("{:?}", Settings::load(&g, &[], None).unwrap());
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(
            debug.contains("postgres://vts:***@127.0.0.1/vts"),
            "{debug}"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<FileConfig>("[sip]\nlisten = []\ndrian_secs = 3\n").unwrap_err();
        assert!(err.to_string().contains("drian_secs"), "{err}");
        let ok: FileConfig =
            toml::from_str("db = \"sqlite://x\"\n[sip]\ndrain_secs = 3\n").unwrap();
        assert_eq!(ok.sip.drain_secs, 3);
        assert_eq!(
            ok.sip.first_response_timeout_ms, 5_000,
            "unset keys keep their defaults"
        );
    }

    #[test]
    fn defaults() {
        let g = Global {
            data_dir: Some("/tmp/x".into()),
            db: None,
            config: None,
        };
        let s = Settings::load(&g, &[], None).unwrap();
        assert_eq!(&*s.db_url, "sqlite:///tmp/x/vts.db");
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.proxy.first_response_timeout, Duration::from_secs(5));
        let http = s.http.expect("HTTP is on by default");
        assert_eq!(http.listen.to_string(), "127.0.0.1:8080");
        assert!(http.tls.is_none() && http.metrics_token.is_none());
    }
}
