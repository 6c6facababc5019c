//! Rules files: TOML with `[lists]`, `[macros]` and `[[rule]]` entries,
//! loaded from files and directories (`*.toml`, in name order) into one
//! [`RuleSet`].
//!
//! ```toml
//! [lists]
//! shells = ["sh", "bash", "zsh"]
//!
//! [macros]
//! in_container = 'container.id exists and container.id != ""'
//!
//! [[rule]]
//! name = "Shell in container"
//! condition = 'event.kind = exec and proc.comm in shells and in_container'
//! severity = "warning"
//! output = "Shell {proc.comm} (pid {proc.pid}) in container {container.id}"
//! tags = ["container", "shell"]
//! rate_limit = "10/1m"            # optional: at most 10 alerts a minute
//! dedup_by = ["container.id"]     # optional: what makes two alerts the same
//! ```
//!
//! Lists and macros are shared by all files of a set; a later file may
//! redefine one, and a rule named like one of an earlier file replaces it
//! (so a user file can override or disable a default rule), with a warning
//! naming both places. Two rules of the same name in one file are an error.
//! Loading reports every error it finds, each with file, line and column.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use serde::Deserialize;
use toml::Spanned;

use super::{
    Rule, RuleSet,
    alert::Severity,
    compile::{Compiler, ListDef, MacroDef},
    diag::{RuleError, RuleErrors, SourceFile, Src},
    eval::KindSet,
    fields::{self, FieldRef},
    limit::RateLimit,
    template::Template,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    lists: BTreeMap<String, Spanned<Vec<Spanned<toml::Value>>>>,
    #[serde(default)]
    macros: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    condition: Spanned<String>,
    output: Spanned<String>,
    severity: Spanned<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    rate_limit: Option<Spanned<String>>,
    #[serde(default)]
    dedup_by: Option<Vec<Spanned<String>>>,
    #[serde(default = "enabled_default")]
    enabled: bool,
}

fn enabled_default() -> bool {
    true
}

/// A successfully loaded set and what was worth a warning.
#[derive(Debug)]
pub struct Loaded {
    /// The rules.
    pub set: RuleSet,
    /// Not errors, but likely mistakes (e.g. a rule that tests every event).
    pub(crate) warnings: Vec<RuleError>,
}

/// The `*.toml` files to load for `paths`: files as given, directories'
/// `*.toml` files in name order.
pub(crate) fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleError> {
    let mut out = Vec::new();
    let trusted = |p: &PathBuf| crate::trust::check(p).map_err(|e| RuleError::file(p, e.advice()));
    for p in paths {
        trusted(p)?;
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| RuleError::file(p, format!("cannot read directory: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml") && f.is_file())
                .collect();
            files.sort();
            for f in &files {
                trusted(f)?;
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Reads and compiles the rules in `paths` (files and directories).
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, RuleErrors> {
    let files = expand_paths(paths).map_err(|e| RuleErrors(vec![e]))?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in &files {
        match std::fs::read_to_string(path) {
            Ok(text) => sources.push(SourceFile {
                path: path.clone(),
                text,
            }),
            Err(e) => errors.push(RuleError::file(path, format!("cannot read: {e}"))),
        }
    }
    match load_sources(sources) {
        Ok(loaded) if errors.is_empty() => Ok(loaded),
        Ok(_) => Err(RuleErrors(errors)),
        Err(RuleErrors(more)) => {
            errors.extend(more);
            Err(RuleErrors(errors))
        }
    }
}

/// Compiles rules from texts already read (`path` is used in messages).
pub fn load_str(path: impl Into<PathBuf>, text: &str) -> Result<Loaded, RuleErrors> {
    load_sources(vec![SourceFile {
        path: path.into(),
        text: text.to_owned(),
    }])
}

/// One file's parsed content, with its source.
struct Parsed {
    file: Arc<SourceFile>,
    raw: RawFile,
}

/// Compiles a set from several files' texts, in order.
pub fn load_sources(sources: Vec<SourceFile>) -> Result<Loaded, RuleErrors> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for source in sources {
        let file = Arc::new(source);
        match toml::from_str::<RawFile>(&file.text) {
            Ok(raw) => parsed.push(Parsed { file, raw }),
            Err(e) => errors.push(toml_error(&file, &e)),
        }
    }
    let (lists, macros) = definitions(&parsed, &mut errors);
    let mut compiler = Compiler::new(&lists, &macros);
    compiler.check_all_macros();
    let mut rules: Vec<Rule> = Vec::new();
    let mut warnings = Vec::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Some(dup) = duplicate_names(p) {
            errors.push(dup);
        }
        if let Some(w) = replaced_rules(&parsed[..i], p) {
            warnings.extend(w);
        }
        for raw in &p.raw.rule {
            match compile_rule(&mut compiler, &p.file, raw) {
                Ok(Some(rule)) => {
                    if rule.kinds == KindSet::ALL {
                        warnings.push(
                            Src::new(p.file.clone(), raw.get_ref().condition.span(), "")
                                .error_whole(format!(
                                    "rule `{}` is tried on every event: add an `event.kind` test",
                                    rule.name
                                )),
                        );
                    }
                    match rules.iter_mut().find(|r| r.name == rule.name) {
                        Some(old) => *old = rule,
                        None => rules.push(rule),
                    }
                }
                Ok(None) => rules.retain(|r| *r.name != *raw.get_ref().name.get_ref()),
                Err(e) => errors.push(e),
            }
        }
    }
    errors.splice(0..0, compiler.macro_errors.drain(..));
    if errors.is_empty() {
        Ok(Loaded {
            set: RuleSet::new(rules, parsed.iter().map(|p| p.file.path.clone()).collect()),
            warnings,
        })
    } else {
        errors.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
        errors.dedup();
        Err(RuleErrors(errors))
    }
}

/// The first rule of `p` named like an earlier rule of the same file, as an
/// error at its name naming the earlier one's line.
fn duplicate_names(p: &Parsed) -> Option<RuleError> {
    let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
    for raw in &p.raw.rule {
        let name = &raw.get_ref().name;
        if let Some(first) = seen.insert(name.get_ref().as_str(), name) {
            let at = RuleError::at(&p.file, first.span(), "");
            let (line, col) = (at.line, at.col);
            return Some(RuleError::at(
                &p.file,
                name.span(),
                format!(
                    "a second rule named `{}` (the first is at line {line}, column {col}); rule names must be unique",
                    name.get_ref()
                ),
            ));
        }
    }
    None
}

/// Warnings for the rules of `p` that replace a rule of an earlier file.
fn replaced_rules(earlier: &[Parsed], p: &Parsed) -> Option<Vec<RuleError>> {
    let mut out = Vec::new();
    for raw in &p.raw.rule {
        let name = &raw.get_ref().name;
        let old = earlier.iter().rev().find_map(|e| {
            e.raw
                .rule
                .iter()
                .find(|r| r.get_ref().name.get_ref() == name.get_ref())
                .map(|r| (e, r))
        });
        if let Some((e, r)) = old {
            let at = RuleError::at(&e.file, r.get_ref().name.span(), "");
            let (line, col) = (at.line, at.col);
            out.push(RuleError::at(
                &p.file,
                name.span(),
                format!(
                    "rule `{}` replaces the one of {}:{line}:{col}",
                    name.get_ref(),
                    e.file.path.display()
                ),
            ));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A TOML syntax or schema error, positioned.
fn toml_error(file: &SourceFile, e: &toml::de::Error) -> RuleError {
    let message = e.message().trim_end().to_owned();
    match e.span() {
        Some(span) => RuleError::at(file, span, message),
        None => RuleError::file(&file.path, message),
    }
}

/// Collects lists and macros of all files (later definitions win).
fn definitions(
    parsed: &[Parsed],
    errors: &mut Vec<RuleError>,
) -> (HashMap<String, ListDef>, HashMap<String, MacroDef>) {
    let mut lists = HashMap::new();
    let mut macros = HashMap::new();
    for p in parsed {
        for (name, items) in &p.raw.lists {
            let mut texts = Vec::new();
            for item in items.get_ref() {
                match item.get_ref() {
                    toml::Value::String(s) => texts.push(s.clone()),
                    toml::Value::Integer(i) => texts.push(i.to_string()),
                    other => errors.push(RuleError::at(
                        &p.file,
                        item.span(),
                        format!(
                            "list `{name}`: members must be strings or integers, not {}",
                            other.type_str()
                        ),
                    )),
                }
            }
            lists.insert(name.clone(), ListDef { items: texts });
        }
        for (name, text) in &p.raw.macros {
            if fields::resolve(name).is_some() {
                errors.push(
                    Src::new(p.file.clone(), text.span(), "")
                        .error_whole(format!("macro `{name}` has the name of a field")),
                );
            }
            let src = Src::new(p.file.clone(), text.span(), text.get_ref());
            macros.insert(
                name.clone(),
                MacroDef {
                    text: text.get_ref().clone(),
                    src,
                },
            );
        }
    }
    (lists, macros)
}

/// Compiles one `[[rule]]`; `Ok(None)` when it is disabled.
fn compile_rule(
    compiler: &mut Compiler<'_>,
    file: &Arc<SourceFile>,
    raw: &Spanned<RawRule>,
) -> Result<Option<Rule>, RuleError> {
    let r = raw.get_ref();
    let at = |s: &Spanned<String>| Src::new(file.clone(), s.span(), s.get_ref());
    if r.name.get_ref().trim().is_empty() {
        return Err(at(&r.name).error_whole("rule name is empty"));
    }
    if !r.enabled {
        return Ok(None);
    }
    let severity: Severity = r
        .severity
        .get_ref()
        .parse()
        .map_err(|e: String| at(&r.severity).error_whole(e))?;
    let condition = compiler.condition(r.condition.get_ref(), &at(&r.condition))?;
    let output = Template::compile(r.output.get_ref(), &at(&r.output))?;
    let rate_limit = match &r.rate_limit {
        Some(s) => Some(
            s.get_ref()
                .parse::<RateLimit>()
                .map_err(|e| at(s).error_whole(e))?,
        ),
        None => None,
    };
    let dedup_by = match &r.dedup_by {
        Some(names) => names
            .iter()
            .map(|n| {
                fields::resolve(n.get_ref()).map(|(f, _)| f).ok_or_else(|| {
                    at(n).error_whole(format!("unknown field `{}` in dedup_by", n.get_ref()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => default_dedup(&output),
    };
    let (line, col) = {
        let e = RuleError::at(file, r.name.span(), "");
        (e.line, e.col)
    };
    Ok(Some(Rule {
        name: r.name.get_ref().as_str().into(),
        description: r.description.clone(),
        severity,
        tags: r.tags.iter().map(|t| t.as_str().into()).collect(),
        kinds: condition.kinds(),
        condition,
        output,
        rate_limit,
        dedup_by: dedup_by.into(),
        location: format!("{}:{line}:{col}", file.path.display()),
    }))
}

/// By default two alerts of a rule are duplicates when the fields their
/// output shows are equal, ignoring process and thread ids (a loop that
/// spawns many shells is one finding, not thousands).
fn default_dedup(output: &Template) -> Vec<FieldRef> {
    let mut v: Vec<FieldRef> = output
        .fields()
        .into_iter()
        .filter(|f| !matches!(f, FieldRef::Pid | FieldRef::Tid | FieldRef::Ppid))
        .collect();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "[[rule]]\nname = \"dup\"\ncondition = 'event.kind = exec'\nseverity = \"info\"\noutput = \"o\"\n";

    #[test]
    fn two_rules_of_one_name_in_a_file_are_an_error_at_the_second() {
        let text = format!("{RULE}{RULE}");
        let errs = load_str("t.toml", &text).expect_err("a duplicate name").0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        assert_eq!((e.line, e.col), (7, 8), "{e:?}");
        assert!(
            e.message.contains("second rule named `dup`") && e.message.contains("line 2"),
            "{e:?}"
        );
    }

    #[test]
    fn a_later_file_replacing_a_rule_says_so() {
        let file = |path: &str| SourceFile {
            path: path.into(),
            text: RULE.into(),
        };
        let l = load_sources(vec![file("a.toml"), file("b.toml")]).unwrap();
        assert_eq!(l.set.rules().len(), 1);
        let w: Vec<&RuleError> = l
            .warnings
            .iter()
            .filter(|w| w.message.contains("replaces"))
            .collect();
        assert_eq!(w.len(), 1, "{:?}", l.warnings);
        assert_eq!(w[0].path, PathBuf::from("b.toml"));
        assert!(w[0].message.contains("a.toml:2:8"), "{:?}", w[0]);
    }
}
