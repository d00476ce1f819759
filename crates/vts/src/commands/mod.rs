//! Every subcommand: open the store (migrations applied, so any command works on a fresh
//! data directory), then do one thing. One file per command family.

mod carrier;
mod cdr;
mod customer;
mod doctor;
mod events;
mod route;
mod routing;
mod security;
mod settings;
mod status;
mod token;
mod trace;
mod usage;

use store::Store;

use crate::cli::{CdrCmd, Cli, Command};
use crate::config::{Settings, redact};
use crate::serve::{self, control};

pub(crate) async fn run(cli: Cli) -> crate::error::Result {
    let listen = match &cli.command {
        Command::Serve(args) | Command::Doctor(args) => args.sip.clone(),
        _ => Vec::new(),
    };
    let http = match &cli.command {
        Command::Serve(args) | Command::Doctor(args) => args.http,
        _ => None,
    };
    let settings = Settings::load(&cli.global, &listen, http)?;
    if matches!(cli.command, Command::Serve(_)) {
        init_logging()?;
    }
    if let Command::Status {
        format,
        reset_latency,
    } = cli.command
    {
        if reset_latency {
            control::request(settings.control_socket(), "reset-latency").await?;
            return Ok(());
        }
        return status::run(&settings, format).await;
    }
    if matches!(cli.command, Command::Doctor(_)) {
        return doctor::run(&settings).await;
    }
    if let Command::Cdr(CdrCmd::Quarantine { format }) = cli.command {
        return cdr::quarantine(&settings, format);
    }
    let store = open_store(&settings).await?;
    // Who the audit records name: the running switch for its own changes (automatic
    // blocks), the operator at the machine for every other command; API requests act as
    // their token.
    let store = match cli.command {
        Command::Serve(_) => store.acting_as(store::Actor::Switch),
        _ => store.acting_as(store::Actor::Cli),
    };
    match cli.command {
        Command::Serve(_) => Ok(serve::serve(settings, store).await?),
        Command::Migrate => {
            println!("migrations applied to {}", redact(&settings.db_url));
            Ok(())
        }
        Command::Status { .. } | Command::Doctor(_) => Ok(()),
        Command::Customer(cmd) => customer::run(&store, cmd).await,
        Command::Carrier(cmd) => carrier::run(&store, &settings, cmd).await,
        Command::Block(cmd) => security::block(&store, cmd).await,
        Command::Whitelist(cmd) => security::whitelist(&store, cmd).await,
        Command::Settings(cmd) => settings::run(&store, cmd).await,
        Command::Plan(cmd) => routing::plan(&store, cmd).await,
        Command::Rateplan(cmd) => routing::rate_plan(&store, cmd).await,
        Command::Route {
            customer,
            number,
            cli,
        } => route::run(&store, &settings, (customer, number, cli)).await,
        Command::Usage(cmd) => usage::run(&store, cmd).await,
        Command::Cdr(cmd) => cdr::run(&store, &settings, cmd).await,
        Command::Events(cmd) => events::run(&store, cmd).await,
        Command::Trace { call_id, format } => trace::run(&store, &call_id, format).await,
        Command::Token(cmd) => token::run(&store, cmd).await,
        Command::Audit {
            target,
            limit,
            format,
        } => token::audit(&store, target, limit, format).await,
    }
}

async fn open_store(settings: &Settings) -> crate::error::Result<Store> {
    // The data directory is the switch's alone (docs/SECURITY.md, "Local security").
    accounting::files::private_dir(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let store = Store::connect(&settings.db_url)
        .await
        .map_err(|e| format!("{}: {e}", redact(&settings.db_url)))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations: {e}"))?;
    if let Some(path) = sqlite_path(&settings.db_url) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            accounting::files::make_private(std::path::Path::new(&file))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(store)
}

/// The file of a `sqlite://PATH[?query]` URL (none for an in-memory database or another
/// scheme).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !url.contains(":memory:") && !url.contains("mode=memory"))
        .then(|| path.into())
}

/// How log lines are written (`VTS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// One line of text per event (the default; what deploy/fail2ban matches).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`), for log
    /// shippers.
    Json,
}

impl LogFormat {
    fn from_env() -> Result<LogFormat, String> {
        match std::env::var("VTS_LOG_FORMAT").as_deref().map(str::trim) {
            Err(_) | Ok("" | "text") => Ok(LogFormat::Text),
            Ok("json") => Ok(LogFormat::Json),
            Ok(other) => Err(format!(
                "environment variable VTS_LOG_FORMAT={other:?}: text or json"
            )),
        }
    }
}

fn init_logging() -> Result<(), String> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("VTS_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match LogFormat::from_env()? {
        LogFormat::Json => builder.json().try_init(),
        // Colours only on a terminal: log files and journald get plain lines that fail2ban
        // (deploy/fail2ban) can match.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(())
}
