//! The `eunomia` binary: parses the command line, runs the command, and maps
//! errors to exit codes in one place (0 success, 1 runtime failure, 2 bad input).

use std::process::ExitCode;

use clap::Parser as _;
use eunomia::{BadInput, cli::Cli, commands, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = logging::init(cli.log_level.as_deref(), cli.default_log_level()) {
        eprintln!("eunomia: {err:#}");
        return ExitCode::from(2);
    }
    if cli.insecure_files {
        eunomia::trust::relax();
    }
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("eunomia: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// 2 when the error was caused by bad input anywhere in its chain, else 1.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<BadInput>()) {
        2
    } else {
        1
    }
}

/// Whether writing to stdout failed because its reader closed the pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
