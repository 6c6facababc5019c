//! The subcommands of `eunomia`, one module each, and [`dispatch`] which
//! routes a parsed command line to them.

pub(crate) mod advise;
pub(crate) mod config;
pub(crate) mod docs;
pub(crate) mod flamegraph;
pub(crate) mod http;
pub(crate) mod map;
pub(crate) mod remote;
pub(crate) mod rules;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod status_overhead;
pub(crate) mod tools;
pub(crate) mod top;
pub(crate) mod version;

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
        Command::Advise(crate::cli::live::AdviseCommand::Seccomp(args)) => advise::seccomp(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}
