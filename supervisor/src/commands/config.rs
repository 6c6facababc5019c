//! `eunomia config check [FILE]` and `eunomia config default`.

use std::path::Path;

use crate::{
    BadInput,
    config::{Config, DEFAULT_PATH, DEFAULT_TEXT},
};

/// Validates FILE (or the default file, or the built-in defaults).
pub fn check(file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(file).map_err(|e| BadInput(e.to_string()))?;
    let source = match file {
        Some(path) => path.display().to_string(),
        None if Path::new(DEFAULT_PATH).exists() => DEFAULT_PATH.to_owned(),
        None => "built-in defaults".to_owned(),
    };
    println!(
        "{source}: ok (poll every {:?}, {} tool(s) enabled)",
        config.agent.poll_interval,
        config.tools.enabled.len()
    );
    Ok(())
}

/// Prints the documented default configuration file.
pub fn print_default() -> anyhow::Result<()> {
    print!("{DEFAULT_TEXT}");
    Ok(())
}
