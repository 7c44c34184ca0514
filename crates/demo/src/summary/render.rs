//! The summary written out: a table for a terminal, or `key=value` lines for logs.

use super::readings::{Reading, TaskFigures};
use std::fmt::Write as _;

/// How the summary is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A table, for a terminal that redraws it in place.
    Table,
    /// One `key=value` line per task per update, for logs and pipes.
    Lines,
}

/// Writes the figures in `style`.
pub fn render(rows: &[(&str, &str, TaskFigures)], style: Style) -> String {
    let mut out = String::new();
    match style {
        Style::Table => {
            let _ = writeln!(
                out,
                "{:<9}  {:<17}  {:>22}  {:>28}  {:>23}  {:>6}  {:>6}  {:>7}",
                "TASK",
                "LAUNCH TYPE",
                "CPU OF LIMIT",
                "WORKING SET / LIMIT",
                "NETWORK RX / TX",
                "REQ/S",
                "5XX",
                "P95"
            );
            for (id, launch_type, f) in rows {
                let _ = writeln!(
                    out,
                    "{:<9}  {:<17}  {:>22}  {:>28}  {:>23}  {:>6}  {:>6}  {:>7}",
                    id,
                    launch_type,
                    share_of(f.cpu_vcpus, f.cpu_limit_vcpus, vcpus, style),
                    used_of(
                        f.memory_working_set_bytes,
                        f.memory_limit_bytes,
                        bytes,
                        style
                    ),
                    format!(
                        "{} / {}",
                        shown(f.network_receive_bytes_per_second, byte_rate, style),
                        shown(f.network_transmit_bytes_per_second, byte_rate, style)
                    ),
                    shown(f.requests_per_second, |v| format!("{v:.1}"), style),
                    shown(f.error_ratio, percent, style),
                    shown(f.latency_p95_ms, milliseconds, style),
                );
                if let Some(error) = &f.scrape_error {
                    let _ = writeln!(out, "          scrape failed: {error}");
                }
            }
        }
        Style::Lines => {
            for (id, launch_type, f) in rows {
                let _ = write!(
                    out,
                    "task={id} launch_type={launch_type} cpu_vcpus={} cpu_limit_vcpus={} \
                     memory_working_set={} memory_limit={} network_rx={} network_tx={} \
                     requests_per_second={} errors={} p95={}",
                    shown(f.cpu_vcpus, |v| format!("{v:.3}"), style),
                    shown(f.cpu_limit_vcpus, |v| format!("{v:.3}"), style),
                    shown(f.memory_working_set_bytes, compact(bytes), style),
                    shown(f.memory_limit_bytes, compact(bytes), style),
                    shown(
                        f.network_receive_bytes_per_second,
                        compact(byte_rate),
                        style
                    ),
                    shown(
                        f.network_transmit_bytes_per_second,
                        compact(byte_rate),
                        style
                    ),
                    shown(f.requests_per_second, |v| format!("{v:.2}"), style),
                    shown(f.error_ratio, percent, style),
                    shown(f.latency_p95_ms, compact(milliseconds), style),
                );
                if let Some(error) = &f.scrape_error {
                    let _ = write!(out, " scrape_error={error:?}");
                }
                out.push('\n');
            }
        }
    }
    out
}

fn shown(reading: Reading, format: impl Fn(f64) -> String, style: Style) -> String {
    match (reading, style) {
        (Reading::Value(value), _) => format(value),
        (Reading::Pending, Style::Table) => "…".to_owned(),
        (Reading::Pending, Style::Lines) => "pending".to_owned(),
        (Reading::Absent, _) => "n/a".to_owned(),
    }
}

/// `44.0% of 0.25 vCPU`: a usage as a share of its limit, or the usage alone without one.
fn share_of(used: Reading, limit: Reading, unit: fn(f64) -> String, style: Style) -> String {
    match (used, limit.value()) {
        (Reading::Value(used), Some(limit)) if limit > 0.0 => {
            format!("{} of {}", percent(used / limit), unit(limit))
        }
        (used, _) => shown(used, unit, style),
    }
}

/// `52.0 MiB / 512.0 MiB (10.2%)`: a usage, its limit and the share, or the usage alone.
fn used_of(used: Reading, limit: Reading, unit: fn(f64) -> String, style: Style) -> String {
    match (used, limit.value()) {
        (Reading::Value(used), Some(limit)) if limit > 0.0 => {
            format!(
                "{} / {} ({})",
                unit(used),
                unit(limit),
                percent(used / limit)
            )
        }
        (used, _) => shown(used, unit, style),
    }
}

/// Drops the spaces, for `key=value` lines.
fn compact(format: fn(f64) -> String) -> impl Fn(f64) -> String {
    move |value| format(value).replace(' ', "")
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn vcpus(value: f64) -> String {
    format!("{value:.2} vCPU")
}

fn milliseconds(value: f64) -> String {
    format!("{value:.0} ms")
}

pub(super) fn bytes(value: f64) -> String {
    scaled(value, "B")
}

fn byte_rate(value: f64) -> String {
    scaled(value, "B/s")
}

/// Binary prefixes, as `free -h` and the ECS console show memory.
fn scaled(value: f64, unit: &str) -> String {
    let mut value = value;
    for prefix in ["", "Ki", "Mi", "Gi"] {
        if value.abs() < 1024.0 || prefix == "Gi" {
            let digits = if prefix.is_empty() { 0 } else { 1 };
            return format!("{value:.digits$} {prefix}{unit}");
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at Gi")
}
