//! The subcommands of `eunomia`, one module each, and [`dispatch`] which
//! routes a parsed command line to them.

pub mod advise;
pub mod config;
pub mod docs;
pub mod flamegraph;
pub mod http;
pub mod map;
pub mod remote;
pub mod rules;
pub mod run;
pub mod status;
pub mod status_overhead;
pub mod tools;
pub mod top;
pub mod version;

use crate::cli::{Cli, Command, ConfigCommand, RulesCommand, ToolsCommand};

/// Runs the command the user asked for.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Tools(ToolsCommand::List {
            json,
            manifest,
            socket,
        }) => tools::list(json, &manifest, &socket),
        Command::Tools(ToolsCommand::Start(args)) => tools::start(args),
        Command::Tools(ToolsCommand::Stop { name, socket }) => tools::stop(&name, &socket),
        Command::Status(args) => status::status(args),
        Command::Version => version::version(),
        Command::Config(ConfigCommand::Check { file }) => config::check(file.as_deref()),
        Command::Config(ConfigCommand::Default) => config::print_default(),
        Command::Flamegraph(args) => flamegraph::flamegraph(args),
        Command::Rules(RulesCommand::Check(args)) => rules::check(args),
        Command::Top(args) => top::top(args),
        Command::Map(args) => map::map(args),
        Command::Http(args) => http::http(args),
        Command::Advise(crate::cli_live::AdviseCommand::Seccomp(args)) => advise::seccomp(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}
