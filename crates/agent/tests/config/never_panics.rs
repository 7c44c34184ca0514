//! No input makes the reader panic, and durations and sizes read back what they wrote.

use agent::{AgentConfig, parse_byte_size, parse_duration};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

/// Fragments of configurations, so that generated texts reach deep into the structure.
const PIECES: &[&str] = &[
    "global:\n",
    "scrape_configs:\n",
    "remote_write:\n",
    "  - job_name: a\n",
    "  - url: http://a/w\n",
    "    static_configs:\n",
    "      - targets: [a:1]\n",
    "    scrape_interval: 1m\n",
    "    relabel_configs:\n",
    "      - action: drop\n",
    "  scrape_timeout: 5s\n",
    "    - ",
    "  ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "<<: ",
    "\t",
    "\n",
    "---\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_text_panics(text in ".{0,200}") {
        let _ = AgentConfig::parse(&text, Path::new("/etc/prometheus"));
    }

    #[test]
    fn no_arrangement_of_configuration_pieces_panics(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..30)) {
        let text: String = pieces.concat();
        if let Err(error) = AgentConfig::parse(&text, Path::new("/etc/prometheus")) {
            // Every refusal says where.
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn durations_read_back(parts in prop::collection::vec(0u64..1000, 7)) {
        let units = ["y", "w", "d", "h", "m", "s", "ms"];
        let millis = [365 * 86_400_000u64, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1];
        let text: String = parts.iter().zip(units).map(|(n, u)| format!("{n}{u}")).collect();
        let expected: u64 = parts.iter().zip(millis).map(|(n, m)| n * m).sum();
        // Go's time.Duration ends at i64::MAX nanoseconds.
        if expected <= i64::MAX as u64 / 1_000_000 {
            prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(expected)));
        } else {
            prop_assert_eq!(parse_duration(&text), Err("duration out of range".to_owned()));
        }
    }

    #[test]
    fn sizes_read_back(n in 0i64..1 << 40, unit in prop::sample::select(&[("B", 0u32), ("KB", 10), ("MiB", 20)][..])) {
        prop_assert_eq!(parse_byte_size(&format!("{n}{}", unit.0)), Ok(n << unit.1));
    }

    #[test]
    fn no_duration_or_size_text_panics(text in "[0-9a-zA-Z.+-]{0,24}") {
        let _ = parse_duration(&text);
        let _ = parse_byte_size(&text);
    }
}
