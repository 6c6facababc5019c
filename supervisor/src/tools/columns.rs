//! Checks of the column names of a manifest's generic formats: a column
//! named one letter away from a standard field of its namespace (`proc.`,
//! `file.`, `net.`, ...) is a misspelling, so `proc.pidd` is refused (with
//! the field it resembles) instead of becoming a field no rule or metric
//! reads. New fields in a standard namespace (`net.proto`) are fine.
//!
//! The event columns of generic tools ([`Manifest::event_columns`]) are
//! declared to the rules engine, so rules can test them.

use std::ops::Range;

use parsers::fields;

use super::{Manifest, manifest::ParserSpec};

/// The namespaces of the standard field names (`proc`, `file`, ...).
fn standard_namespaces() -> impl Iterator<Item = &'static str> {
    fields::ALL
        .iter()
        .filter_map(|n| n.split_once('.').map(|(ns, _)| ns))
}

/// Why `name` cannot be a column, if it cannot: it is one edit away from a
/// standard field of its namespace without being one.
pub(crate) fn misspelled(name: &str) -> Option<String> {
    let (ns, _) = name.split_once('.')?;
    if fields::ALL.contains(&name) || !standard_namespaces().any(|s| s == ns) {
        return None;
    }
    let nearest = fields::ALL
        .iter()
        .filter(|f| f.starts_with(&format!("{ns}.")) && strsim::levenshtein(name, f) <= 1)
        .min_by_key(|f| strsim::levenshtein(name, f))?;
    Some(format!(
        "column `{name}` looks like a misspelling of the standard field `{nearest}`; \
         a field of the tool's own takes a name of its own"
    ))
}

/// The byte range of the quoted `name` inside `text[within]` (the first
/// one), to point an error at it.
pub(crate) fn locate(text: &str, within: Range<usize>, name: &str) -> Option<Range<usize>> {
    let part = text.get(within.clone())?;
    ["\"", "'"].iter().find_map(|q| {
        let quoted = format!("{q}{name}{q}");
        part.find(&quoted)
            .map(|i| within.start + i..within.start + i + quoted.len())
    })
}

impl Manifest {
    /// The event columns of the generic tools, with their manifest type:
    /// what rules may test once they are declared to them.
    pub(crate) fn event_columns(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for tool in self.tools() {
            let ParserSpec::Generic(g) = &tool.parser else {
                continue;
            };
            if matches!(g.format, parsers::Format::Columns | parsers::Format::Fixed) {
                out.extend(g.columns.iter().map(|c| (&*c.name, &*c.ty)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;

    #[test]
    fn a_name_one_edit_from_a_standard_field_is_refused() {
        let why = misspelled("proc.pidd").expect("refused");
        assert!(why.contains("standard field `proc.pid`"), "{why}");
        assert_eq!(misspelled("net.proto"), None);
        assert_eq!(misspelled("proc.pid"), None);
        assert_eq!(misspelled("ticker.n"), None);
        assert_eq!(misspelled("count"), None);
        assert!(misspelled("file.pth").unwrap().contains("`file.path`"));
    }

    #[test]
    fn the_manifest_refuses_it_at_its_line_and_column() {
        let text = "[[tool]]\nname = \"t\"\ndescription = \"d\"\nbinary = \"/bin/true\"\n\
                    output = \"events\"\n[tool.format]\nformat = \"columns\"\n\
                    columns = [{ name = \"proc.pidd\", type = \"int\" }]\n";
        let e = crate::tools::Manifest::parse(text, "m.toml").expect_err("refused");
        assert_eq!((e.line, e.col), (8, 21), "{e}");
        assert!(e.message.contains("`proc.pid`"), "{e}");
    }

    #[test]
    fn rules_can_test_the_columns_of_a_manifest_tool() {
        let text = "[[tool]]\nname = \"counter\"\ndescription = \"d\"\nbinary = \"/bin/true\"\n\
                    output = \"events\"\n[tool.format]\nformat = \"columns\"\n\
                    columns = [{ name = \"proc.pid\", type = \"int\" }, \
                    { name = \"counter.n\", type = \"int\" }, { name = \"counter.what\", type = \"rest\" }]\n";
        let rule = "[[rule]]\nname = \"r\"\nseverity = \"info\"\noutput = \"{counter.what}\"\n\
                    condition = 'event.kind = generic and counter.n >= 3 and counter.what = \"x y\"'\n";
        let unknown = rules::load::load_str("r.toml", rule).expect_err("not declared yet");
        assert!(
            unknown.0[0].message.contains("unknown field"),
            "{unknown:?}"
        );
        let manifest = Manifest::parse(text, "m.toml").unwrap();
        rules::fields::declare_columns(manifest.event_columns());
        let set = rules::load::load_str("r.toml", rule).unwrap().set;
        let mut parser = manifest.get("counter").unwrap().new_parser();
        let (records, _) = parsers::parse_all(parser.as_mut(), b"42 3 x y\n42 2 x y\n");
        let hits: Vec<bool> = records
            .iter()
            .map(|r| {
                let e = r.as_event().unwrap();
                set.rules()[0].condition.eval(&rules::eval::Ctx::bare(e))
            })
            .collect();
        assert_eq!(hits, [true, false]);
    }

    #[test]
    fn locates_the_quoted_name() {
        let text = "x = 1\ncolumns = [{ name = \"proc.pidd\", type = \"int\" }]\n";
        let r = locate(text, 6..text.len(), "proc.pidd").unwrap();
        assert_eq!(&text[r], "\"proc.pidd\"");
    }
}
