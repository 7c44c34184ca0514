//! The standard `process_*` metrics of the Prometheus client libraries, read from `/proc`.
//!
//! Elsewhere than Linux the list is empty: these metrics describe the exporter itself and are
//! never worth failing a scrape for.

use crate::Family;

/// The `process_*` families for the calling process (empty outside Linux).
pub fn families() -> Vec<Family> {
    #[cfg(target_os = "linux")]
    return linux::families();
    #[cfg(not(target_os = "linux"))]
    return Vec::new();
}

#[cfg(target_os = "linux")]
mod linux {
    use crate::{Family, MetricType};
    use std::sync::OnceLock;

    /// The `process_*` families, read from `/proc`.
    pub(super) fn families() -> Vec<Family> {
        let mut families = Vec::with_capacity(6);
        let Some(stat) = read_stat() else {
            return families;
        };
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let gauge = |name, help, value: f64| {
            let mut family = Family::new(name, help, MetricType::Gauge);
            family.push(Vec::new(), value);
            family
        };

        let mut cpu = Family::new(
            "process_cpu_seconds_total",
            "User and system CPU time spent by this process, in seconds.",
            MetricType::Counter,
        );
        cpu.push(
            Vec::new(),
            (stat.utime_ticks + stat.stime_ticks) as f64 / ticks,
        );
        families.push(cpu);
        families.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory size of this process, in bytes.",
            stat.rss_pages as f64 * rustix::param::page_size() as f64,
        ));
        families.push(gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size of this process, in bytes.",
            stat.vsize_bytes as f64,
        ));
        if let Some(start) = start_time_seconds(stat.start_ticks, ticks) {
            families.push(gauge(
                "process_start_time_seconds",
                "Start time of this process since the Unix epoch, in seconds.",
                start,
            ));
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            families.push(gauge(
                "process_open_fds",
                "Number of open file descriptors of this process.",
                entries.count() as f64,
            ));
        }
        if let Some(max) = max_fds() {
            families.push(gauge(
                "process_max_fds",
                "Maximum number of open file descriptors of this process.",
                max as f64,
            ));
        }
        families
    }

    pub(super) struct Stat {
        pub(super) utime_ticks: u64,
        pub(super) stime_ticks: u64,
        pub(super) start_ticks: u64,
        pub(super) vsize_bytes: u64,
        pub(super) rss_pages: u64,
    }

    /// Reads `/proc/self/stat` through a descriptor kept open for the life of the process: one
    /// `pread` per scrape instead of open, stat, read and close.
    fn read_stat() -> Option<Stat> {
        use std::os::unix::fs::FileExt;
        static STAT: OnceLock<Option<std::fs::File>> = OnceLock::new();
        let file = STAT
            .get_or_init(|| std::fs::File::open("/proc/self/stat").ok())
            .as_ref()?;
        let mut buffer = [0u8; 2048];
        let length = file.read_at(&mut buffer, 0).ok()?;
        parse_stat(std::str::from_utf8(&buffer[..length]).ok()?)
    }

    /// The soft limit on open files, read once: a process's own limit does not change under it
    /// in practice.
    fn max_fds() -> Option<u64> {
        static MAX_FDS: OnceLock<Option<u64>> = OnceLock::new();
        *MAX_FDS
            .get_or_init(|| rustix::process::getrlimit(rustix::process::Resource::Nofile).current)
    }

    /// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses,
    /// so the fields are counted from the last `)`.
    pub(super) fn parse_stat(text: &str) -> Option<Stat> {
        let after_name = &text[text.rfind(')')? + 1..];
        // After the name come the fields numbered 3 onwards in proc(5).
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
        Some(Stat {
            utime_ticks: field(14)?,
            stime_ticks: field(15)?,
            start_ticks: field(22)?,
            vsize_bytes: field(23)?,
            rss_pages: field(24)?,
        })
    }

    fn start_time_seconds(start_ticks: u64, ticks_per_second: f64) -> Option<f64> {
        static BOOT_TIME: OnceLock<Option<u64>> = OnceLock::new();
        let boot = (*BOOT_TIME.get_or_init(|| {
            let text = std::fs::read_to_string("/proc/stat").ok()?;
            text.lines()
                .find_map(|line| line.strip_prefix("btime "))
                .and_then(|value| value.trim().parse().ok())
        }))?;
        Some(boot as f64 + start_ticks as f64 / ticks_per_second)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    use super::linux::parse_stat;
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 300 0 0 0 \
                    170 30 0 0 20 0 3 0 12345 10485760 512 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).expect("a well-formed line parses");
        assert_eq!(stat.utime_ticks, 170);
        assert_eq!(stat.stime_ticks, 30);
        assert_eq!(stat.start_ticks, 12345);
        assert_eq!(stat.vsize_bytes, 10485760);
        assert_eq!(stat.rss_pages, 512);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reports_this_process() {
        let families = families();
        let names: Vec<_> = families.iter().map(|f| f.name).collect();
        assert!(names.contains(&"process_cpu_seconds_total"), "{names:?}");
        let rss = families
            .iter()
            .find(|f| f.name == "process_resident_memory_bytes")
            .expect("resident memory is reported on Linux");
        // A running test binary holds at least a megabyte and far less than a terabyte.
        assert!(rss.samples[0].value > 1e6 && rss.samples[0].value < 1e12);
    }
}
