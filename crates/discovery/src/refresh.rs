//! One refresh of every source, and the state kept between refreshes: each source's last good
//! targets (a source that fails keeps them, so an error never shrinks the list), its last
//! error in words, and the counters the self-metrics show.

use crate::cloudmap;
use crate::ecs::{CacheStats, ClusterSource};
use crate::prometheus_config::ConfigSync;
use crate::target::TargetGroup;
use aws_api::{AwsClient, Service};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where the Cloud Map namespaces come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// No Cloud Map discovery.
    None,
    /// These names.
    Fixed(Vec<String>),
    /// The comma-separated names in this SSM parameter, read every refresh.
    Parameter(String),
}

/// Which kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// A Cloud Map namespace.
    CloudMap,
    /// An ECS cluster.
    Ecs,
}

impl SourceKind {
    /// The label value in metrics and the word on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::CloudMap => "cloudmap",
            SourceKind::Ecs => "ecs",
        }
    }
}

/// A source: a kind and the namespace or cluster name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey {
    /// Kind.
    pub kind: SourceKind,
    /// Namespace or cluster as configured.
    pub name: String,
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// What is known about one source.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// Targets of its last good refresh.
    pub targets: Vec<TargetGroup>,
    /// The error of its last refresh, if it failed.
    pub last_error: Option<String>,
    /// When it last refreshed without error (seconds since the epoch).
    pub last_success: Option<f64>,
    /// Refreshes in which it failed.
    pub failures: u64,
}

/// The result of one refresh.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    /// Whether every source (and the namespaces parameter) refreshed without error.
    pub ok: bool,
    /// How long it took.
    pub duration: Duration,
}

/// Discovery's state between refreshes.
pub struct Discovery {
    client: Arc<AwsClient>,
    namespaces: Namespaces,
    /// The names from the parameter, as last read.
    namespace_names: Vec<String>,
    /// The error of the last read of the namespaces parameter.
    pub namespaces_error: Option<String>,
    clusters: Vec<ClusterSource>,
    /// Every source's status.
    pub sources: BTreeMap<SourceKey, SourceStatus>,
    /// The Prometheus configuration kept in SSM, when configured.
    pub config_sync: Option<ConfigSync>,
    /// Refreshes so far.
    pub refreshes: u64,
    /// Duration of the last refresh.
    pub last_duration: Option<Duration>,
    /// When a refresh last completed with every source good (seconds since the epoch).
    pub last_success: Option<f64>,
}

impl Discovery {
    /// Discovery over these sources.
    pub fn new(
        client: Arc<AwsClient>,
        namespaces: Namespaces,
        clusters: &[String],
        container_instance_ttl: Duration,
        config_sync: Option<ConfigSync>,
    ) -> Self {
        let namespace_names = match &namespaces {
            Namespaces::Fixed(names) => names.clone(),
            Namespaces::None | Namespaces::Parameter(_) => Vec::new(),
        };
        Discovery {
            client,
            namespaces,
            namespace_names,
            namespaces_error: None,
            clusters: clusters
                .iter()
                .map(|c| ClusterSource::new(c.clone(), container_instance_ttl))
                .collect(),
            sources: BTreeMap::new(),
            config_sync,
            refreshes: 0,
            last_duration: None,
            last_success: None,
        }
    }

    /// The AWS client, for its call counts.
    pub fn client(&self) -> &AwsClient {
        &self.client
    }

    /// Every current target, source by source.
    pub fn targets(&self) -> Vec<TargetGroup> {
        self.sources
            .values()
            .flat_map(|s| s.targets.clone())
            .collect()
    }

    /// Cache statistics summed over clusters.
    pub fn cache_stats(&self) -> CacheStats {
        self.clusters
            .iter()
            .fold(CacheStats::default(), |mut sum, c| {
                sum.task_hits += c.stats.task_hits;
                sum.task_misses += c.stats.task_misses;
                sum.task_definition_hits += c.stats.task_definition_hits;
                sum.task_definition_misses += c.stats.task_definition_misses;
                sum.container_instance_hits += c.stats.container_instance_hits;
                sum.container_instance_misses += c.stats.container_instance_misses;
                sum
            })
    }

    /// Refreshes every source once.
    pub async fn refresh(&mut self) -> RefreshReport {
        let started = Instant::now();
        let mut ok = true;
        if let Namespaces::Parameter(name) = &self.namespaces {
            match read_parameter(&self.client, name).await {
                Ok(value) => {
                    self.namespace_names = parse_namespace_list(&value);
                    self.namespaces_error = None;
                }
                Err(error) => {
                    // The names last read stay in force.
                    ok = false;
                    tracing::warn!(parameter = %name, error = %error, "reading the namespaces parameter failed");
                    self.namespaces_error = Some(error.to_string());
                }
            }
        }
        let current: Vec<SourceKey> = self
            .namespace_names
            .iter()
            .map(|name| SourceKey {
                kind: SourceKind::CloudMap,
                name: name.clone(),
            })
            .chain(self.clusters.iter().map(|c| SourceKey {
                kind: SourceKind::Ecs,
                name: c.cluster().to_owned(),
            }))
            .collect();
        // A namespace taken out of the parameter is no longer a source (not an error).
        self.sources.retain(|key, _| current.contains(key));

        if !self.namespace_names.is_empty() {
            let ids = cloudmap::namespace_ids(&self.client).await;
            for name in self.namespace_names.clone() {
                let result = match &ids {
                    Ok(ids) => cloudmap::namespace_targets(&self.client, &name, ids)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                let key = SourceKey {
                    kind: SourceKind::CloudMap,
                    name,
                };
                ok &= record(
                    &mut self.sources,
                    key,
                    result.map(|targets| (targets, None)),
                );
            }
        }
        for cluster in &mut self.clusters {
            let key = SourceKey {
                kind: SourceKind::Ecs,
                name: cluster.cluster().to_owned(),
            };
            let result = cluster
                .refresh(&self.client)
                .await
                .map(|r| (r.targets, r.partial_error))
                .map_err(|e| e.to_string());
            ok &= record(&mut self.sources, key, result);
        }
        if let Some(sync) = &mut self.config_sync {
            ok &= sync.sync(&self.client).await;
        }
        let duration = started.elapsed();
        self.refreshes += 1;
        self.last_duration = Some(duration);
        if ok {
            self.last_success = Some(now());
        }
        // Routine: what changed and what failed is logged where it happens.
        tracing::debug!(
            targets = self.sources.values().map(|s| s.targets.len()).sum::<usize>(),
            sources = self.sources.len(),
            ok,
            duration = ?duration,
            "refresh done"
        );
        RefreshReport { ok, duration }
    }
}

/// Stores a source's result: targets replace the old ones only when the source answered;
/// an error is kept in words and counted. Returns whether the source refreshed cleanly.
fn record(
    sources: &mut BTreeMap<SourceKey, SourceStatus>,
    key: SourceKey,
    result: Result<(Vec<TargetGroup>, Option<String>), String>,
) -> bool {
    let status = sources.entry(key.clone()).or_default();
    let error = match result {
        Ok((targets, partial_error)) => {
            status.targets = targets;
            partial_error
        }
        Err(error) => Some(error),
    };
    match error {
        None => {
            status.last_error = None;
            status.last_success = Some(now());
            true
        }
        Some(error) => {
            tracing::warn!(source = %key, error = %error, kept_targets = status.targets.len(), "source refresh failed");
            status.last_error = Some(error);
            status.failures += 1;
            false
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Names in a comma-separated list, trimmed, empties dropped, first occurrence kept.
pub fn parse_namespace_list(value: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParameterAnswer {
    parameter: Parameter,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    #[serde(default)]
    value: String,
}

/// The value of an SSM parameter (SecureString parameters decrypted).
pub async fn read_parameter(client: &AwsClient, name: &str) -> Result<String, aws_api::AwsError> {
    let answer: GetParameterAnswer = client
        .json(
            Service::Ssm,
            "GetParameter",
            &json!({ "Name": name, "WithDecryption": true }),
        )
        .await?;
    Ok(answer.parameter.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_lists_are_trimmed_and_deduplicated() {
        assert_eq!(
            parse_namespace_list(" ecs-services, ,web.local,ecs-services\n"),
            ["ecs-services", "web.local"]
        );
        assert!(parse_namespace_list("").is_empty());
    }

    #[test]
    fn a_failing_source_keeps_its_targets_and_says_why() {
        let mut sources = BTreeMap::new();
        let key = SourceKey {
            kind: SourceKind::Ecs,
            name: "prod".into(),
        };
        let target = TargetGroup::new("10.0.0.1", 9779);
        assert!(record(
            &mut sources,
            key.clone(),
            Ok((vec![target.clone()], None))
        ));
        assert!(!record(
            &mut sources,
            key.clone(),
            Err("ListTasks: ThrottlingException".into())
        ));
        let status = &sources[&key];
        assert_eq!(status.targets, std::slice::from_ref(&target));
        assert_eq!(status.failures, 1);
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("Throttling"))
        );
        // A partial answer replaces the targets but still counts as a failure.
        assert!(!record(
            &mut sources,
            key.clone(),
            Ok((vec![], Some("DescribeTasks: timeout".into())))
        ));
        assert_eq!(sources[&key].failures, 2);
        assert!(record(&mut sources, key.clone(), Ok((vec![target], None))));
        assert_eq!(sources[&key].last_error, None);
    }
}
