//! The embedded migrations, one folder per backend.
//!
//! `sqlx::migrate!` needs sqlx's `macros` feature, whose proc-macro crate links both database
//! drivers and compiles the bundled SQLite a second time for the host. Embedding the files
//! with `include_str!` costs nothing and builds the same [`Migration`]s (version and
//! description from the file name, checksum of the file's text), so databases stay
//! compatible if we ever switch to the macro. The price is listing each file below; a test
//! checks that the list matches the folders.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::Backend;

/// `(file name, contents)` for each file of `migrations/<folder>/`.
macro_rules! embed {
    ($folder:literal: $($file:literal),+ $(,)?) => {
        &[$((
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $folder, "/", $file)),
        )),+]
    };
}

const SQLITE: &[(&str, &str)] = embed!("sqlite": "0001_initial.sql", "0002_customer_status.sql", "0003_settings.sql", "0004_blocklist.sql", "0005_carrier_limits.sql", "0006_carrier_prefixes.sql", "0007_whitelist.sql", "0008_carrier_timers.sql", "0009_numbers_plans_rates_health.sql", "0010_minutes.sql", "0011_rating.sql", "0012_usage.sql", "0013_header_policy.sql", "0014_blocklist_version.sql", "0015_events.sql", "0016_sip_traces.sql", "0017_api.sql");
const POSTGRES: &[(&str, &str)] = embed!("postgres": "0001_initial.sql", "0002_customer_status.sql", "0003_settings.sql", "0004_blocklist.sql", "0005_carrier_limits.sql", "0006_carrier_prefixes.sql", "0007_whitelist.sql", "0008_carrier_timers.sql", "0009_numbers_plans_rates_health.sql", "0010_minutes.sql", "0011_rating.sql", "0012_usage.sql", "0013_header_policy.sql", "0014_blocklist_version.sql", "0015_events.sql", "0016_sip_traces.sql", "0017_api.sql");

pub(crate) fn files(backend: Backend) -> &'static [(&'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The migrator for `backend`.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations = files(backend)
        .iter()
        .map(|&(file, sql)| {
            let (version, description) =
                parse_name(file).expect("embedded migration names are checked by a test");
            let no_tx = sql.starts_with("-- no-transaction");
            Migration::new(
                version,
                Cow::Owned(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                no_tx,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// `0001_initial.sql` → `(1, "initial")`, as `sqlx::migrate!` names them.
pub(crate) fn parse_name(file: &str) -> Option<(i64, String)> {
    let stem = file.strip_suffix(".sql")?;
    let (version, description) = stem.split_once('_')?;
    let version = version.parse().ok()?;
    Some((version, description.replace('_', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let sqlite = folder("sqlite");
        let postgres = folder("postgres");
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "migrations/sqlite and migrations/postgres must hold the same files"
        );
        for name in &sqlite {
            assert!(
                parse_name(name).is_some(),
                "{name}: expected <VERSION>_<DESCRIPTION>.sql"
            );
        }
    }

    #[test]
    fn every_file_of_each_folder_is_embedded() {
        for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
            let embedded: Vec<&str> = files(backend).iter().map(|(name, _)| *name).collect();
            assert_eq!(
                embedded,
                folder(dir),
                "update the embed! list in src/migrations.rs"
            );
        }
    }

    #[test]
    fn versions_are_increasing_and_distinct() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let versions: Vec<i64> = migrator(backend).iter().map(|m| m.version).collect();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        }
        assert_eq!(parse_name("0001_initial.sql"), Some((1, "initial".into())));
        assert_eq!(
            parse_name("0012_add_rates.sql"),
            Some((12, "add rates".into()))
        );
        assert_eq!(parse_name("initial.sql"), None);
    }
}
