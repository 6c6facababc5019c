//! `eunomia rules check FILE...`: validates rules files. Errors go to stderr
//! as `file:line:col: message` with the offending text underlined, and the
//! command exits with 2; on success it lists the rules it loaded.

use std::io::Write as _;

use crate::{
    BadInput,
    cli::RulesCheckArgs,
    rules::{self, Loaded, RuleErrors},
};

/// Checks the files and reports.
pub(crate) fn check(args: RulesCheckArgs) -> anyhow::Result<()> {
    declare_manifest_fields();
    let result = if args.with_defaults {
        rules::load_with_defaults(&args.files)
    } else {
        rules::load_paths(&args.files)
    };
    match result {
        Ok(loaded) => report(&loaded, &args),
        Err(errors) => Err(fail(&errors, &args)),
    }
}

/// Makes the columns of the tools the default configuration's manifest adds
/// fields the rules may use, as the agent does; a configuration or manifest
/// that does not load adds none (`config check` reports those).
fn declare_manifest_fields() {
    if let Ok(config) = crate::config::Config::load(None) {
        let _ = crate::config::load_manifest(&config.tools);
    }
}

/// Prints every error and returns the bad-input error that exits with 2.
fn fail(errors: &RuleErrors, args: &RulesCheckArgs) -> anyhow::Error {
    let mut err = std::io::stderr().lock();
    for e in &errors.0 {
        if args.json {
            let v = serde_json::json!({
                "file": e.path, "line": e.line, "col": e.col, "message": e.message,
            });
            let _ = writeln!(err, "{v}");
        } else {
            let _ = writeln!(err, "{e}");
        }
    }
    if !args.with_defaults
        && errors.0.iter().any(|e| {
            e.message.starts_with("unknown macro") || e.message.starts_with("unknown list")
        })
    {
        let _ = writeln!(
            err,
            "note: the agent loads the built-in default rules first; add --with-defaults if these files use their lists and macros"
        );
    }
    let n = errors.0.len();
    anyhow::Error::new(BadInput(format!(
        "{n} error{} in the rules",
        if n == 1 { "" } else { "s" }
    )))
}

/// Prints warnings (stderr) and the loaded rules (stdout).
fn report(loaded: &Loaded, args: &RulesCheckArgs) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    for w in &loaded.warnings {
        writeln!(err, "warning: {w}")?;
    }
    let mut out = std::io::stdout().lock();
    for r in loaded.set.rules() {
        if args.json {
            let v = serde_json::json!({
                "rule": &*r.name,
                "severity": r.severity,
                "kinds": r.kinds.names(),
                "tags": &*r.tags,
                "location": r.location,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{:<45} {:<9} {:<22} {}",
                r.name,
                r.severity,
                r.kinds.names().join(","),
                r.location
            )?;
        }
    }
    if !args.json {
        let n = loaded.set.rules().len();
        writeln!(out, "{n} rule{} OK", if n == 1 { "" } else { "s" })?;
    }
    Ok(())
}
