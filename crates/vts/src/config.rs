//! Settings, layered: built-in defaults < the TOML file (`--config`) < environment variables
//! (`VTS_…`) < command-line flags. Unknown keys in the file are an error; a bad value names
//! its key and where it came from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proxy::{ListenerSpec, ProxyConfig};
use serde::Deserialize;

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TraceSection {
    /// `failed` (default), `all`, `sample` or `off`: which calls' SIP messages are stored.
    mode: String,
    /// With `sample`: the percent of calls.
    sample_percent: u8,
    /// Below this many new calls a second every call is stored whole (0: never).
    all_below_cps: u32,
    /// Trace messages older than this many days are deleted (0: kept, within `max_mb`).
    retention_days: u32,
    /// Stored trace messages hold at most this many MiB; the oldest go first.
    max_mb: u64,
    /// Messages waiting for their call's outcome hold at most this many MiB.
    memory_mb: usize,
    /// `udp:IP:PORT`: send every SIP message as HEPv3 to this collector.
    hep: Option<String>,
    /// The capture agent id in every HEP packet.
    hep_id: u32,
    hep_password: Option<String>,
}

impl Default for TraceSection {
    fn default() -> Self {
        TraceSection {
            mode: "failed".into(),
            sample_percent: 10,
            all_below_cps: 5,
            retention_days: 7,
            max_mb: 1024,
            memory_mb: 64,
            hep: None,
            hep_id: 2001,
            hep_password: None,
        }
    }
}

/// Stored SIP traces, resolved (`None` in [`Settings`] when `mode = "off"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TraceSettings {
    pub(crate) policy: telemetry::trace::Policy,
    pub(crate) retention: Option<Duration>,
    pub(crate) max_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EventsSection {
    /// Events older than this many days are deleted; 0 keeps them for ever.
    retention_days: u32,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection { retention_days: 30 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpSection {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SipSection {
    /// `udp:ADDR:PORT` / `tcp:ADDR:PORT`.
    listen: Vec<String>,
    first_response_timeout_ms: u64,
    ring_timeout_ms: u64,
    max_attempts: u32,
    max_call_duration_secs: u64,
    drain_secs: u64,
    t1_ms: u64,
    t2_ms: u64,
    t4_ms: u64,
    max_message_size: usize,
    user_agent: String,
    max_transactions: usize,
    max_calls_in_setup: usize,
    tcp_max_connections: usize,
    tcp_max_connections_per_address: usize,
    tcp_send_queue_bytes: usize,
    tcp_header_timeout_ms: u64,
    tcp_idle_timeout_secs: u64,
    tcp_connect_timeout_ms: u64,
    tcp_max_connecting: usize,
    max_send_tasks: usize,
}

impl Default for SipSection {
    fn default() -> Self {
        let l = proxy::Limits::default();
        SipSection {
            listen: vec!["udp:0.0.0.0:5060".into(), "tcp:0.0.0.0:5060".into()],
            first_response_timeout_ms: 5_000,
            ring_timeout_ms: 120_000,
            max_attempts: 5,
            max_call_duration_secs: 4 * 3600,
            drain_secs: 30,
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            max_message_size: 16 * 1024,
            user_agent: "vts".into(),
            max_transactions: l.max_transactions,
            max_calls_in_setup: l.max_calls_in_setup,
            tcp_max_connections: l.tcp_max_connections,
            tcp_max_connections_per_address: l.tcp_max_connections_per_address,
            tcp_send_queue_bytes: l.tcp_send_queue_bytes,
            tcp_header_timeout_ms: l.tcp_header_timeout.as_millis() as u64,
            tcp_idle_timeout_secs: l.tcp_idle_timeout.as_secs(),
            tcp_connect_timeout_ms: l.tcp_connect_timeout.as_millis() as u64,
            tcp_max_connecting: l.tcp_max_connecting,
            max_send_tasks: l.max_send_tasks,
        }
    }
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
        let mut sip = file.sip;
        let mut cdr = file.cdr;
        let http = http_settings(file.http, http_flag)?;
        let mut events = file.events;
        let traces = trace_settings(&file.trace)?;
        let hep = hep_target(file.trace)?;
        env_override(&mut events.retention_days, "VTS_EVENTS_RETENTION_DAYS")?;
        env_override(&mut sip.ring_timeout_ms, "VTS_SIP_RING_TIMEOUT_MS")?;
        env_override(&mut sip.max_attempts, "VTS_SIP_MAX_ATTEMPTS")?;
        if sip.max_attempts == 0 {
            return Err("sip.max_attempts must be at least 1".into());
        }
        env_override(
            &mut sip.first_response_timeout_ms,
            "VTS_SIP_FIRST_RESPONSE_TIMEOUT_MS",
        )?;
        env_override(
            &mut sip.max_call_duration_secs,
            "VTS_SIP_MAX_CALL_DURATION_SECS",
        )?;
        env_override(&mut sip.drain_secs, "VTS_SIP_DRAIN_SECS")?;
        env_override(&mut sip.t1_ms, "VTS_SIP_T1_MS")?;
        env_override(&mut sip.t2_ms, "VTS_SIP_T2_MS")?;
        env_override(&mut sip.t4_ms, "VTS_SIP_T4_MS")?;
        env_override(&mut sip.max_message_size, "VTS_SIP_MAX_MESSAGE_SIZE")?;
        env_override(&mut sip.user_agent, "VTS_SIP_USER_AGENT")?;
        env_override(&mut sip.max_transactions, "VTS_SIP_MAX_TRANSACTIONS")?;
        env_override(&mut sip.max_calls_in_setup, "VTS_SIP_MAX_CALLS_IN_SETUP")?;
        env_override(&mut sip.tcp_max_connections, "VTS_SIP_TCP_MAX_CONNECTIONS")?;
        env_override(
            &mut sip.tcp_max_connections_per_address,
            "VTS_SIP_TCP_MAX_CONNECTIONS_PER_ADDRESS",
        )?;
        env_override(
            &mut sip.tcp_send_queue_bytes,
            "VTS_SIP_TCP_SEND_QUEUE_BYTES",
        )?;
        env_override(
            &mut sip.tcp_header_timeout_ms,
            "VTS_SIP_TCP_HEADER_TIMEOUT_MS",
        )?;
        env_override(
            &mut sip.tcp_idle_timeout_secs,
            "VTS_SIP_TCP_IDLE_TIMEOUT_SECS",
        )?;
        env_override(
            &mut sip.tcp_connect_timeout_ms,
            "VTS_SIP_TCP_CONNECT_TIMEOUT_MS",
        )?;
        env_override(&mut sip.tcp_max_connecting, "VTS_SIP_TCP_MAX_CONNECTING")?;
        env_override(&mut sip.max_send_tasks, "VTS_SIP_MAX_SEND_TASKS")?;
        for (key, value) in [
            ("sip.max_transactions", sip.max_transactions),
            ("sip.max_calls_in_setup", sip.max_calls_in_setup),
            ("sip.tcp_max_connections", sip.tcp_max_connections),
            (
                "sip.tcp_max_connections_per_address",
                sip.tcp_max_connections_per_address,
            ),
            ("sip.tcp_max_connecting", sip.tcp_max_connecting),
            ("sip.max_send_tasks", sip.max_send_tasks),
        ] {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if sip.tcp_send_queue_bytes < sip.max_message_size {
            return Err(format!(
                "sip.tcp_send_queue_bytes ({}) must hold at least one message of \
                 sip.max_message_size ({})",
                sip.tcp_send_queue_bytes, sip.max_message_size
            ));
        }
        if !(1024..=65_535).contains(&sip.max_message_size) {
            return Err(format!(
                "sip.max_message_size must be between 1024 and 65535 bytes (got {})",
                sip.max_message_size
            ));
        }
        if sip.tcp_header_timeout_ms == 0
            || sip.tcp_idle_timeout_secs == 0
            || sip.tcp_connect_timeout_ms == 0
        {
            return Err("sip.tcp_header_timeout_ms, sip.tcp_idle_timeout_secs and \
                 sip.tcp_connect_timeout_ms must be above 0"
                .into());
        }
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
        let listen = if listen_flags.is_empty() {
            sip.listen
                .iter()
                .map(|s| s.parse().map_err(|e| format!("sip.listen: {e}")))
                .collect::<Result<Vec<ListenerSpec>, String>>()?
        } else {
            listen_flags.to_vec()
        };
        if listen.is_empty() {
            return Err("sip.listen: at least one listen address is needed".into());
        }
        if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms {
            return Err(format!(
                "sip: t1_ms must be > 0 and t2_ms >= t1_ms (got {} and {})",
                sip.t1_ms, sip.t2_ms
            ));
        }
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
        let mut proxy = ProxyConfig {
            first_response_timeout: Duration::from_millis(sip.first_response_timeout_ms),
            ring_timeout: Duration::from_millis(sip.ring_timeout_ms),
            max_attempts: sip.max_attempts,
            max_call_duration: Duration::from_secs(sip.max_call_duration_secs),
            drain_timeout: Duration::from_secs(sip.drain_secs),
            user_agent: sip.user_agent,
            ..ProxyConfig::default()
        };
        proxy.timers.t1 = Duration::from_millis(sip.t1_ms);
        proxy.timers.t2 = Duration::from_millis(sip.t2_ms);
        proxy.timers.t4 = Duration::from_millis(sip.t4_ms);
        proxy.sanity.max_message_size = sip.max_message_size;
        proxy.limits = proxy::Limits {
            max_transactions: sip.max_transactions,
            max_calls_in_setup: sip.max_calls_in_setup,
            tcp_max_connections: sip.tcp_max_connections,
            tcp_max_connections_per_address: sip.tcp_max_connections_per_address,
            tcp_send_queue_bytes: sip.tcp_send_queue_bytes,
            tcp_header_timeout: Duration::from_millis(sip.tcp_header_timeout_ms),
            tcp_idle_timeout: Duration::from_secs(sip.tcp_idle_timeout_secs),
            tcp_connect_timeout: Duration::from_millis(sip.tcp_connect_timeout_ms),
            tcp_max_connecting: sip.tcp_max_connecting,
            max_send_tasks: sip.max_send_tasks,
        };
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
        })
    }

    /// The control socket of a running switch.
    pub(crate) fn control_socket(&self) -> PathBuf {
        self.data_dir.join("vts.sock")
    }
}

/// The `[http]` section with `--http`/`VTS_HTTP` over its `listen`; `None` when off.
fn http_settings(
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

/// The `[trace]` settings of stored traces (`VTS_TRACE_MODE` over `mode`).
fn trace_settings(trace: &TraceSection) -> Result<Option<TraceSettings>, String> {
    let mode = std::env::var("VTS_TRACE_MODE").unwrap_or_else(|_| trace.mode.clone());
    if mode.trim() == "off" {
        return Ok(None);
    }
    let mode = match mode
        .parse()
        .map_err(|e| format!("trace.mode: {e} or off"))?
    {
        telemetry::trace::Mode::Sample(_) => {
            if trace.sample_percent > 100 {
                return Err(format!(
                    "trace.sample_percent must be 0 to 100 (got {})",
                    trace.sample_percent
                ));
            }
            telemetry::trace::Mode::Sample(trace.sample_percent)
        }
        m => m,
    };
    let mut all_below_cps = trace.all_below_cps;
    env_override(&mut all_below_cps, "VTS_TRACE_ALL_BELOW_CPS")?;
    if trace.max_mb == 0 || trace.memory_mb == 0 {
        return Err("trace.max_mb and trace.memory_mb must be at least 1".into());
    }
    Ok(Some(TraceSettings {
        policy: telemetry::trace::Policy {
            mode,
            all_below_cps,
            memory_bytes: trace.memory_mb.saturating_mul(1024 * 1024),
        },
        retention: (trace.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(trace.retention_days) * 86_400)),
        max_bytes: trace.max_mb.saturating_mul(1024 * 1024),
    }))
}

/// The `[trace]` HEP settings (`VTS_TRACE_HEP` over `hep`); `None` when there is no collector.
fn hep_target(mut trace: TraceSection) -> Result<Option<telemetry::hep::Target>, String> {
    if let Ok(v) = std::env::var("VTS_TRACE_HEP") {
        trace.hep = Some(v).filter(|v| !v.trim().is_empty());
    }
    env_override(&mut trace.hep_id, "VTS_TRACE_HEP_ID")?;
    let Some(hep) = trace.hep else {
        return Ok(None);
    };
    let collector = telemetry::hep::parse_collector(&hep).map_err(|e| format!("trace.hep: {e}"))?;
    Ok(Some(telemetry::hep::Target {
        collector,
        agent_id: trace.hep_id,
        password: trace.hep_password.filter(|p| !p.is_empty()),
    }))
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
        let e = toml::from_str::<FileConfig>("[http]\nlistne = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
    }
}
