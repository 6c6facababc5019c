//! tracefs: where it is mounted, which tracepoints exist, and the byte
//! offsets of fields in tracepoint records (from the `format` files, which
//! change between kernels).

use std::path::PathBuf;

/// tracefs mount points, in the order tried.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Where tracefs is mounted (the first candidate with an `events` folder).
pub(crate) fn root() -> Option<PathBuf> {
    TRACEFS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// The byte offset of `field` in the records of tracepoint `category/name`.
pub(crate) fn tracepoint_field(category: &str, name: &str, field: &str) -> Option<u32> {
    let text = TRACEFS.iter().find_map(|root| {
        std::fs::read_to_string(format!("{root}/events/{category}/{name}/format")).ok()
    })?;
    parse_format_field(&text, field)
}

/// Finds `field:<type> <field>[...];\toffset:N;` in a tracepoint format.
fn parse_format_field(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let last = decl.split_whitespace().last()?;
        let ident = last.split('[').next()?;
        if ident != field {
            return None;
        }
        rest.trim()
            .strip_prefix("offset:")?
            .split(';')
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_fields() {
        let f = "name: x\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                 \tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
                 \tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;\n";
        assert_eq!(parse_format_field(f, "skaddr"), Some(8));
        assert_eq!(parse_format_field(f, "daddr_v6"), Some(56));
        assert_eq!(parse_format_field(f, "daddr"), None);
    }
}
