//! The common event model and the nom parsers that turn libbpf-tools' text
//! output into it. A pure library: no I/O, no async.
