//! `eunomia config check [FILE]` and `eunomia config default`.

use std::path::Path;

use crate::{
    BadInput,
    config::{Config, DEFAULT_PATH, DEFAULT_TEXT},
    preflight,
};

/// Validates FILE (or the default file, or the built-in defaults) as `run`
/// would, and prints what it turns on and which `OTEL_*` variables applied.
pub(crate) fn check(file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(file).map_err(|e| BadInput(e.to_string()))?;
    let checked = preflight::check(&config)?;
    let source = match file {
        Some(path) => std::path::absolute(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string(),
        None if Path::new(DEFAULT_PATH).exists() => DEFAULT_PATH.to_owned(),
        None => "built-in defaults".to_owned(),
    };
    println!(
        "{source}: ok (poll every {})",
        humantime::format_duration(config.agent.poll_interval)
    );
    print!("{}", describe(&config, &checked));
    Ok(())
}

/// The lines after `ok`: tools, rules, sinks, environment, notes.
fn describe(config: &Config, p: &preflight::Preflight) -> String {
    let mut out = String::new();
    let none = |v: &[String]| match v.is_empty() {
        true => "none".to_owned(),
        false => v.join(", "),
    };
    out += &format!(
        "tools:       {} (manifest {})
",
        none(&p.tools),
        p.manifests.join(", ")
    );
    let files: Vec<String> = p
        .rules_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    out += &match config.rules.enabled {
        true => format!(
            "rules:       {} from {}
",
            p.rules,
            none(&files)
        ),
        false => "rules:       off
"
        .to_owned(),
    };
    match p.sinks.is_empty() {
        true => {
            out += "sinks:       none
"
        }
        false => {
            for s in &p.sinks {
                out += &format!(
                    "sink:        {s}
"
                );
            }
        }
    }
    for setting in &config.env {
        out += &format!(
            "environment: {setting}
"
        );
    }
    for note in &p.notes {
        out += &format!(
            "note:        {note}
"
        );
    }
    out
}

/// Prints the documented default configuration file.
pub(crate) fn print_default() -> anyhow::Result<()> {
    print!("{DEFAULT_TEXT}");
    Ok(())
}
