//! Fuzz target: container log lines. The first input byte picks the format
//! (Docker json-file, CRI, podman k8s-file) and the join bound; every line
//! is parsed, joined and read for level, trace ids and pattern.
#![no_main]

use parsers::logs::{LogFormat, PartialJoiner, parse_line, understand};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let format = match sel % 3 {
        0 => LogFormat::DockerJson,
        1 => LogFormat::Cri,
        _ => LogFormat::K8sFile,
    };
    let mut joiner = PartialJoiner::new(usize::from(sel >> 2) + 1);
    for (at, line) in rest.split(|b| *b == b'\n').enumerate() {
        if let Ok(l) = parse_line(format, line)
            && let Some(whole) = joiner.push(l, at as u64)
        {
            std::hint::black_box(understand(&whole.text));
        }
        std::hint::black_box(understand(line));
    }
    for whole in joiner.flush() {
        std::hint::black_box(understand(&whole.text));
    }
});
