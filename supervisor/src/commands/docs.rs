//! `eunomia completions SHELL` and `eunomia man`: shell completions and man
//! pages generated from the command line's definition (clap_complete,
//! clap_mangen), so they never drift from `--help`.

use std::{io::Write as _, path::Path};

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::{BadInput, cli::Cli};

/// Prints the completion script of `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "eunomia", &mut out);
    out.flush().context("writing to stdout")
}

/// Prints the main man page, or writes every page into `dir`.
pub(crate) fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(BadInput(format!("--dir {}: not a directory", dir.display())).into());
            }
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("writing to stdout")?;
            out.flush().context("writing to stdout")
        }
    }
}
