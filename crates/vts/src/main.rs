//! `vts`: the switch and its operator CLI. `cli.rs` declares the commands, `config.rs`
//! layers file, environment and flags, `serve.rs` wires store, proxy and accounting, and
//! `commands/` holds the operator commands, one file per command family.

mod cli;
mod commands;
mod config;
mod error;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vts: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vts: {e}");
            ExitCode::FAILURE
        }
    }
}
