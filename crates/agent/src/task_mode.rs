//! `ecs-prom agent --ecs.task`: the configuration a sidecar needs, written from a few flags.
//! It is an ordinary configuration file (written next to the queues, where a user can read
//! it), so the sidecar runs, reloads and reports exactly as an agent with a file does.

use crate::config::EcsScope;
use crate::duration::format_duration;
use std::time::Duration;

/// The job of the containers that do not name one (`PROMETHEUS_EXPORTER_JOB_NAME`).
pub const TASK_JOB: &str = "ecs-task";

/// What `--ecs.task` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTaskOptions {
    /// `--ecs.scope`.
    pub scope: EcsScope,
    /// `--ecs.metadata-url`; `None`: `$ECS_CONTAINER_METADATA_URI_V4` when the agent runs.
    pub metadata_url: Option<String>,
    /// `--ecs.task-metrics`: the task's ECS metrics, collected in-process.
    pub task_metrics: bool,
    /// `--ecs.refresh-interval`: how soon containers that start, stop or restart are seen.
    pub refresh_interval: Duration,
    /// `--scrape.interval`.
    pub scrape_interval: Duration,
    /// `--scrape.timeout` (at most the interval).
    pub scrape_timeout: Duration,
    /// `--remote-write.url`.
    pub remote_write_url: String,
    /// `--remote-write.region`: signs with SigV4 in this region. An AMP workspace URL is
    /// signed without it, in the URL's region.
    pub region: Option<String>,
    /// `--remote-write.role-arn`: a role to assume for signing.
    pub role_arn: Option<String>,
}

/// The configuration file of `options`.
pub fn ecs_task_config(options: &EcsTaskOptions) -> String {
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = String::from(
        "# Written by `ecs-prom agent --ecs.task` from its flags at every start; edits are lost.\n",
    );
    out.push_str(&format!(
        "global:\n  scrape_interval: {}\n  scrape_timeout: {}\n",
        format_duration(options.scrape_interval),
        format_duration(options.scrape_timeout.min(options.scrape_interval)),
    ));
    out.push_str(&format!(
        "scrape_configs:\n  - job_name: {TASK_JOB}\n    ecs_task_sd_configs:\n      - scope: {}\n        refresh_interval: {}\n        task_metrics: {}\n",
        options.scope.as_str(),
        format_duration(options.refresh_interval),
        options.task_metrics,
    ));
    if let Some(url) = &options.metadata_url {
        out.push_str(&format!("        metadata_url: {}\n", quote(url)));
    }
    // One task's few hundred samples per scrape are one request: a single shard sends them
    // without splitting them into several small ones.
    out.push_str(&format!(
        "remote_write:\n  - url: {}\n    queue_config:\n      max_shards: 1\n",
        quote(&options.remote_write_url)
    ));
    let amp = crate::remotes::region_of_amp_url(&options.remote_write_url).is_some();
    let sigv4: Vec<String> = [("region", &options.region), ("role_arn", &options.role_arn)]
        .into_iter()
        .filter_map(|(name, value)| Some(format!("      {name}: {}\n", quote(value.as_ref()?))))
        .collect();
    if !sigv4.is_empty() {
        out.push_str("    sigv4:\n");
        out.push_str(&sigv4.concat());
    } else if amp {
        // The URL's region and the standard credential chain.
        out.push_str("    sigv4: {}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;
    use std::path::Path;

    fn options(url: &str) -> EcsTaskOptions {
        EcsTaskOptions {
            scope: EcsScope::Task,
            metadata_url: None,
            task_metrics: true,
            refresh_interval: Duration::from_secs(10),
            scrape_interval: Duration::from_secs(15),
            scrape_timeout: Duration::from_secs(10),
            remote_write_url: url.to_owned(),
            region: None,
            role_arn: None,
        }
    }

    #[test]
    fn an_amp_url_is_signed_in_its_region_without_being_told() {
        let url =
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write";
        let text = ecs_task_config(&options(url));
        let config = AgentConfig::parse(&text, Path::new("/")).expect("parses");
        assert_eq!(config.remote_write.len(), 1);
        assert_eq!(config.remote_write[0].url, url);
        let sigv4 = config.remote_write[0].sigv4.as_ref().expect("signed");
        assert_eq!(sigv4.region, None, "the URL's region applies");
        assert_eq!(config.remote_write[0].queue_config.max_shards, 1);
        let job = &config.scrape_configs[0];
        assert_eq!(job.job_name, TASK_JOB);
        assert_eq!(job.scrape_interval, Duration::from_secs(15));
        assert_eq!(job.scrape_timeout, Duration::from_secs(10));
        let sd = &job.ecs_task_sd_configs[0];
        assert_eq!(sd.scope, EcsScope::Task);
        assert_eq!(sd.metadata_url, None);
        assert!(sd.task_metrics);
    }

    #[test]
    fn another_url_is_signed_only_when_a_region_is_given() {
        let mut plain = options("http://10.0.0.9:9090/api/v1/write");
        let config = AgentConfig::parse(&ecs_task_config(&plain), Path::new("/")).expect("parses");
        assert!(config.remote_write[0].sigv4.is_none());
        plain.region = Some("us-east-2".to_owned());
        plain.role_arn = Some("arn:aws:iam::1:role/x".to_owned());
        plain.scope = EcsScope::Instance;
        plain.metadata_url = Some("http://127.0.0.1:5/v4/a \"quoted\"".to_owned());
        plain.scrape_timeout = Duration::from_secs(60);
        let text = ecs_task_config(&plain);
        let error = AgentConfig::parse(&text, Path::new("/")).expect_err("a space in the URL");
        assert!(error.to_string().contains("metadata_url"), "{error}");
        plain.metadata_url = Some("http://127.0.0.1:5/v4/a".to_owned());
        let config = AgentConfig::parse(&ecs_task_config(&plain), Path::new("/")).expect("parses");
        let sigv4 = config.remote_write[0].sigv4.as_ref().expect("signed");
        assert_eq!(sigv4.region.as_deref(), Some("us-east-2"));
        assert_eq!(sigv4.role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
        let job = &config.scrape_configs[0];
        assert_eq!(
            job.scrape_timeout,
            Duration::from_secs(15),
            "never above the interval"
        );
        assert_eq!(job.ecs_task_sd_configs[0].scope, EcsScope::Instance);
        assert_eq!(
            job.ecs_task_sd_configs[0].metadata_url.as_deref(),
            Some("http://127.0.0.1:5/v4/a")
        );
    }
}
