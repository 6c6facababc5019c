//! Property tests of the container-log parsers: no panic on arbitrary bytes
//! or on real log lines with bytes flipped, cut or repeated; a line written
//! in a format reads back as written.

use parsers::logs::{LogFormat, PartialJoiner, Stream, parse_line, understand};
use proptest::prelude::*;

const FORMATS: [LogFormat; 3] = [LogFormat::DockerJson, LogFormat::Cri, LogFormat::K8sFile];

const SAMPLES: [&[u8]; 4] = [
    br#"{"log":"{\"level\":\"error\",\"msg\":\"x 1\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n","stream":"stdout","time":"2024-05-01T10:00:00.123Z"}"#,
    b"2024-05-01T10:00:00.123456789Z stderr P E0102 15:04:05.123456 1 a.go:1] part",
    b"2024-05-01T12:00:00.1+02:00 stdout F level=warn trace_id=4bf92f3577b34da6a3ce929d0e0e4736 n=1",
    b"2024-05-01T10:00:00Z stdout F traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
];

fn exercise(line: &[u8]) {
    let mut joiner = PartialJoiner::new(64);
    for f in FORMATS {
        if let Ok(l) = parse_line(f, line)
            && let Some(whole) = joiner.push(l, 0)
        {
            let _ = understand(&whole.text);
        }
    }
    let _ = joiner.flush();
    let _ = understand(line);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&line);
    }

    #[test]
    fn mutated_samples_never_panic(
        which in 0usize..SAMPLES.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        repeat in 1usize..4,
    ) {
        let mut line = SAMPLES[which].to_vec();
        for (at, b) in flips {
            let i = at % line.len();
            line[i] = b;
        }
        line.truncate(cut % (line.len() + 1));
        let line = line.repeat(repeat);
        exercise(&line);
    }

    #[test]
    fn cri_lines_read_back(text in "[ -~]{0,80}", partial in any::<bool>(), err in any::<bool>()) {
        let stream = if err { "stderr" } else { "stdout" };
        let tag = if partial { "P" } else { "F" };
        let line = format!("2024-05-01T10:00:00.000000001Z {stream} {tag} {text}");
        let l = parse_line(LogFormat::Cri, line.as_bytes()).unwrap();
        prop_assert_eq!(&*l.text, text.as_bytes());
        prop_assert_eq!(l.partial, partial);
        prop_assert_eq!(l.stream, if err { Stream::Stderr } else { Stream::Stdout });
    }

    #[test]
    fn docker_lines_read_back(text in "\\PC{0,80}", partial in any::<bool>()) {
        let log = if partial { text.clone() } else { format!("{text}\n") };
        let line = serde_json::json!({"log": log, "stream": "stdout", "time": "2024-05-01T10:00:00Z"});
        let bytes = serde_json::to_vec(&line).unwrap();
        let l = parse_line(LogFormat::DockerJson, &bytes).unwrap();
        prop_assert_eq!(&*l.text, text.as_bytes());
        prop_assert_eq!(l.partial, partial);
    }
}
