//! The live summary: scrapes every exporter and demo app once a second, keeps a minute of
//! what it read, and shows per task the figures a platform engineer looks at first. All of
//! it is computed from the scrapes, as Prometheus would compute it, never from the
//! simulator's internals.
//!
//! The scraping is in `history.rs`, the figures in `readings.rs`, the output in `render.rs`.

mod history;
mod readings;
mod render;

pub use readings::{Reading, TaskFigures};
pub use render::{Style, render};

use crate::cluster::DemoTask;
use history::{APP_SERIES, EXPORTER_SERIES, Target, scrape};
use readings::task_figures;
use std::time::{Duration, Instant};

/// How often the summary scrapes: often enough to see when a sampled counter steps.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// A task's pair of targets.
struct Watched {
    id: String,
    launch_type: String,
    exporter: Target,
    app: Target,
}

/// The summary of every task of the cluster.
pub struct Summary {
    started: Instant,
    tasks: Vec<Watched>,
}

impl Summary {
    /// Watches the exporter and app of every task.
    pub fn new(tasks: &[DemoTask]) -> anyhow::Result<Summary> {
        let tasks = tasks
            .iter()
            .map(|task| {
                Ok(Watched {
                    id: task.id.clone(),
                    launch_type: task.metadata.launch_type.clone(),
                    exporter: Target::new(&task.exporter_url, EXPORTER_SERIES)?,
                    app: Target::new(&task.app_url, APP_SERIES)?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Summary {
            started: Instant::now(),
            tasks,
        })
    }

    /// Scrapes every target once, all at the same time.
    pub async fn scrape(&mut self) {
        let at = self.started.elapsed().as_secs_f64();
        let mut scrapes = tokio::task::JoinSet::new();
        for (index, task) in self.tasks.iter().enumerate() {
            for (is_app, target) in [(false, &task.exporter), (true, &task.app)] {
                let (client, url) = (target.client.clone(), target.url.clone());
                scrapes.spawn(async move { (index, is_app, scrape(&client, &url).await) });
            }
        }
        while let Some(Ok((index, is_app, scraped))) = scrapes.join_next().await {
            let task = &mut self.tasks[index];
            let target = if is_app {
                &mut task.app
            } else {
                &mut task.exporter
            };
            target.record(at, scraped);
        }
    }

    /// The figures of every task: (short task id, launch type, figures).
    pub fn figures(&self) -> Vec<(&str, &str, TaskFigures)> {
        self.tasks
            .iter()
            .map(|task| {
                (
                    &task.id[..task.id.len().min(8)],
                    task.launch_type.as_str(),
                    task_figures(&task.exporter, &task.app),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exposition::parse_samples;
    use render::bytes;

    fn target_with(scrapes: &[(f64, &str)], keep: &'static [&'static str]) -> Target {
        let mut target = Target::new("http://127.0.0.1:9", keep).expect("valid URL");
        for (at, text) in scrapes {
            target.record(*at, Ok(parse_samples(text).expect("valid text")));
        }
        target
    }

    /// Two containers, a task limit of 0.25 vCPU and 512 MiB; CPU sampled every 10 s,
    /// scraped every 5 s from t = 0 to t = 30.
    fn fargate_exporter() -> Target {
        let mut scrapes = Vec::new();
        for step in 0..=6 {
            let t = f64::from(step) * 5.0;
            let period = (t / 10.0).floor();
            scrapes.push((
                t,
                format!(
                    "ecs_task_cpu_limit_vcpus 0.25\n\
                     ecs_task_memory_limit_bytes 536870912\n\
                     ecs_container_memory_limit_bytes{{container_name=\"app\"}} 536870912\n\
                     ecs_container_memory_limit_bytes{{container_name=\"sidecar\"}} 536870912\n\
                     ecs_container_cpu_usage_seconds_total{{container_name=\"app\"}} {}\n\
                     ecs_container_cpu_usage_seconds_total{{container_name=\"sidecar\"}} {}\n\
                     ecs_container_memory_working_set_bytes{{container_name=\"app\"}} 50331648\n\
                     ecs_container_memory_working_set_bytes{{container_name=\"sidecar\"}} 4194304\n\
                     ecs_network_receive_bytes_total{{interface=\"eth1\"}} {}\n\
                     ecs_network_transmit_bytes_total{{interface=\"eth1\"}} {}\n\
                     ecs_exporter_build_info{{version=\"x\"}} 1\n",
                    100.0 + period * 1.0,
                    7.0 + period * 0.1,
                    period * 20480.0,
                    period * 10240.0,
                ),
            ));
        }
        let scrapes: Vec<(f64, &str)> = scrapes.iter().map(|(t, s)| (*t, s.as_str())).collect();
        target_with(&scrapes, EXPORTER_SERIES)
    }

    fn app_after(requests: &[(f64, u32, u32)]) -> Target {
        // (time, 200 responses so far, 500 responses so far); every 200 took ≤ 50 ms, every
        // 500 took (50, 100] ms.
        let texts: Vec<(f64, String)> = requests
            .iter()
            .map(|(t, ok, errors)| {
                (
                    *t,
                    format!(
                        "http_requests_total{{method=\"GET\",path=\"/work\",status=\"200\"}} {ok}\n\
                         http_requests_total{{method=\"GET\",path=\"/error\",status=\"500\"}} {errors}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"50\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"100\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"+Inf\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"50\"}} 0\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"100\"}} {errors}\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"+Inf\"}} {errors}\n"
                    ),
                )
            })
            .collect();
        let scrapes: Vec<(f64, &str)> = texts.iter().map(|(t, s)| (*t, s.as_str())).collect();
        target_with(&scrapes, APP_SERIES)
    }

    #[test]
    fn computes_the_figures_of_a_fargate_task_from_its_scrapes() {
        let exporter = fargate_exporter();
        // 90 OK and 10 errors over 20 s.
        let app = app_after(&[(10.0, 10, 0), (20.0, 60, 5), (30.0, 100, 10)]);
        let f = task_figures(&exporter, &app);
        // CPU changes seen at t = 10, 20, 30: (1.0 + 0.1) vCPU-seconds per 10 s.
        let Reading::Value(cpu) = f.cpu_vcpus else {
            panic!("{:?}", f.cpu_vcpus)
        };
        assert!((cpu - 0.11).abs() < 1e-9, "{cpu}");
        assert_eq!(f.cpu_limit_vcpus, Reading::Value(0.25));
        assert_eq!(f.memory_working_set_bytes, Reading::Value(54525952.0));
        assert_eq!(f.memory_limit_bytes, Reading::Value(536870912.0));
        assert_eq!(f.network_receive_bytes_per_second, Reading::Value(2048.0));
        assert_eq!(f.network_transmit_bytes_per_second, Reading::Value(1024.0));
        assert_eq!(f.requests_per_second, Reading::Value(5.0));
        assert_eq!(f.error_ratio, Reading::Value(0.1));
        // 100 requests in the window: 90 in (0, 50], 10 in (50, 100]. Rank 95 is 5 of the 10
        // in (50, 100]: 75 ms.
        assert_eq!(f.latency_p95_ms, Reading::Value(75.0));
        assert_eq!(f.scrape_error, None);
    }

    #[test]
    fn limits_fall_back_to_the_containers_and_figures_wait_for_data() {
        let exporter = target_with(
            &[(
                0.0,
                "ecs_container_cpu_limit_vcpus{container_name=\"a\"} 0.125\n\
                 ecs_container_cpu_limit_vcpus{container_name=\"b\"} 0.125\n\
                 ecs_container_cpu_limit_vcpus{container_name=\"stopped\"} 0.125\n\
                 ecs_container_cpu_usage_seconds_total{container_name=\"a\"} 1\n\
                 ecs_container_cpu_usage_seconds_total{container_name=\"b\"} 1\n\
                 ecs_container_memory_limit_bytes{container_name=\"a\"} 268435456\n\
                 ecs_container_memory_working_set_bytes{container_name=\"a\"} 1024\n\
                 ecs_container_memory_working_set_bytes{container_name=\"b\"} 1024\n",
            )],
            EXPORTER_SERIES,
        );
        let f = task_figures(&exporter, &app_after(&[(0.0, 1, 0)]));
        // Only the containers with usage count: a and b, not the stopped one.
        assert_eq!(f.cpu_limit_vcpus, Reading::Value(0.25));
        // b has no limit of its own, and there is no task limit.
        assert_eq!(f.memory_limit_bytes, Reading::Absent);
        assert_eq!(f.cpu_vcpus, Reading::Pending);
        assert_eq!(f.network_receive_bytes_per_second, Reading::Absent);
        assert_eq!(f.requests_per_second, Reading::Pending);
        assert_eq!(f.latency_p95_ms, Reading::Pending);
    }

    #[test]
    fn a_series_that_just_appeared_does_not_hold_the_others_back() {
        let app = target_with(
            &[
                (0.0, "http_requests_total{status=\"200\"} 10\n"),
                (
                    10.0,
                    "http_requests_total{status=\"200\"} 60\n\
                     http_requests_total{status=\"500\"} 1\n\
                     request_duration_milliseconds_bucket{le=\"+Inf\"} 5\n",
                ),
            ],
            APP_SERIES,
        );
        let f = task_figures(&target_with(&[], EXPORTER_SERIES), &app);
        assert_eq!(f.requests_per_second, Reading::Value(5.0));
        assert_eq!(f.error_ratio, Reading::Value(0.0));
        assert_eq!(f.latency_p95_ms, Reading::Pending);
        assert_eq!(f.cpu_vcpus, Reading::Absent);
    }

    #[test]
    fn a_failed_scrape_is_reported_and_keeps_the_history() {
        let mut exporter = fargate_exporter();
        exporter.record(
            31.0,
            Err("GET http://127.0.0.1:9/metrics failed".to_owned()),
        );
        let f = task_figures(&exporter, &app_after(&[]));
        assert!(matches!(f.cpu_vcpus, Reading::Value(_)));
        assert_eq!(
            f.scrape_error.as_deref(),
            Some("GET http://127.0.0.1:9/metrics failed")
        );
        assert_eq!(f.requests_per_second, Reading::Absent);
    }

    #[test]
    fn history_is_limited_to_the_window() {
        let mut target = target_with(&[], APP_SERIES);
        for second in 0..200 {
            target.record(f64::from(second), Ok(Vec::new()));
        }
        assert_eq!(target.history.len(), 61);
        assert_eq!(target.history.front().map(|(t, _)| *t), Some(139.0));
    }

    #[test]
    fn renders_a_table_and_plain_lines() {
        let f = task_figures(
            &fargate_exporter(),
            &app_after(&[(10.0, 10, 0), (20.0, 60, 5), (30.0, 100, 10)]),
        );
        let rows = [("0123abcd", "FARGATE", f)];
        let table = render(&rows, Style::Table);
        let row = table.lines().nth(1).expect("a row");
        for part in [
            "0123abcd",
            "FARGATE",
            "44.0% of 0.25 vCPU",
            "52.0 MiB / 512.0 MiB (10.2%)",
            "2.0 KiB/s / 1.0 KiB/s",
            "5.0",
            "10.0%",
            "75 ms",
        ] {
            assert!(row.contains(part), "{part:?} in {row:?}");
        }
        assert_eq!(
            render(&rows, Style::Lines),
            "task=0123abcd launch_type=FARGATE cpu_vcpus=0.110 cpu_limit_vcpus=0.250 \
             memory_working_set=52.0MiB memory_limit=512.0MiB network_rx=2.0KiB/s \
             network_tx=1.0KiB/s requests_per_second=5.00 errors=10.0% p95=75ms\n"
        );
    }

    #[test]
    fn scales_with_binary_prefixes() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(536870912.0), "512.0 MiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0), "3072.0 GiB");
    }
}
