//! One refresh of every source, and the state kept between refreshes: each source's last good
//! targets (a source that fails keeps them, so an error never shrinks the list), its last
//! error in words, and the counters the self-metrics show.

use crate::cloudmap;
use crate::ecs::{CacheStats, ClusterSource};
use crate::error::RefreshError;
use crate::prometheus_config::ConfigSync;
pub use crate::source::{SourceKey, SourceKind};
use crate::ssm::read_parameter;
use crate::state::{SourceState, State};
use aws_api::AwsClient;
use file_sd::TargetGroup;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use timestamps::now;
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

/// What is known about one source.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// Targets of its last good refresh.
    pub targets: Vec<TargetGroup>,
    /// The error of its last refresh, if it failed.
    pub last_error: Option<RefreshError>,
    /// When it last refreshed without error (seconds since the epoch).
    pub last_success: Option<f64>,
    /// Refreshes in which it failed.
    pub failures: u64,
    /// Whether it has answered, in this process or before a restart (its targets are
    /// known, even if it fails now).
    pub answered: bool,
    /// Whether its targets come from the state file and it has not answered in full since.
    pub restored: bool,
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
    pub namespaces_error: Option<RefreshError>,
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

    /// Refreshes every source once, all of them at the same time (the client's rate limits
    /// still pace the calls), each within `deadline` of the start: a source that is not done
    /// by then fails this refresh and keeps its targets, so one stuck source never holds up
    /// the others.
    pub async fn refresh(&mut self, deadline: Duration) -> RefreshReport {
        let started = Instant::now();
        let until = started + deadline;
        let expired = || RefreshError::Deadline(deadline);
        let mut ok = true;
        if let Namespaces::Parameter(name) = &self.namespaces {
            let read =
                match tokio::time::timeout_at(until, read_parameter(&self.client, name)).await {
                    Ok(read) => read.map_err(RefreshError::from),
                    Err(_) => Err(expired()),
                };
            match read {
                Ok(parameter) => {
                    self.namespace_names = parse_namespace_list(&parameter.value);
                    self.namespaces_error = None;
                }
                Err(error) => {
                    // The names last read (or restored) stay in force.
                    ok = false;
                    tracing::warn!(parameter = %name, error = %error, "reading the namespaces parameter failed");
                    self.namespaces_error = Some(error);
                }
            }
        }
        let current = self.configured_sources();
        // A namespace taken out of the parameter is no longer a source (not an error).
        self.sources.retain(|key, _| current.contains(key));

        let client: &AwsClient = &self.client;
        let names = &self.namespace_names;
        let cloudmap_results = async {
            if names.is_empty() {
                return Vec::new();
            }
            let ids = match tokio::time::timeout_at(until, cloudmap::namespace_ids(client)).await {
                Ok(ids) => ids.map_err(RefreshError::from),
                Err(_) => Err(expired()),
            };
            let ids = &ids;
            join_all(names.iter().map(|name| async move {
                let result = match ids {
                    Ok(ids) => {
                        match tokio::time::timeout_at(
                            until,
                            cloudmap::namespace_targets(client, name, ids),
                        )
                        .await
                        {
                            Ok(result) => result.map(|t| (t, None)),
                            Err(_) => Err(expired()),
                        }
                    }
                    Err(error) => Err(error.clone()),
                };
                (SourceKey::cloudmap(name), result)
            }))
            .await
        };
        let ecs_results = join_all(self.clusters.iter_mut().map(|cluster| async move {
            let key = SourceKey::ecs(cluster.cluster());
            let result = match tokio::time::timeout_at(until, cluster.refresh(client)).await {
                Ok(result) => result
                    .map(|r| (r.targets, r.partial_error))
                    .map_err(RefreshError::from),
                Err(_) => Err(expired()),
            };
            (key, result)
        }));
        let (cloudmap_results, ecs_results) = tokio::join!(cloudmap_results, ecs_results);
        for (key, result) in cloudmap_results.into_iter().chain(ecs_results) {
            ok &= record(&mut self.sources, key, result);
        }
        if let Some(sync) = &mut self.config_sync {
            match tokio::time::timeout_at(until, sync.sync(&self.client)).await {
                Ok(synced) => ok &= synced,
                Err(_) => {
                    ok = false;
                    tracing::warn!(parameter = %sync.parameter(), "Prometheus configuration sync not done within the refresh deadline");
                    sync.last_error = Some(expired());
                }
            }
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

    /// Every source discovery is configured for now.
    fn configured_sources(&self) -> Vec<SourceKey> {
        self.namespace_names
            .iter()
            .map(|name| SourceKey::cloudmap(name))
            .chain(self.clusters.iter().map(|c| SourceKey::ecs(c.cluster())))
            .collect()
    }

    /// Whether discovery knows any targets to publish: some source has answered (in this
    /// process or before a restart), or a refresh succeeded (with no sources, or none with
    /// targets, the empty list is then the truth).
    pub fn knows_targets(&self) -> bool {
        self.last_success.is_some() || self.sources.values().any(|s| s.answered)
    }

    /// Whether a configured source has never answered, in this process or before a restart:
    /// its targets, if it has any, are in no list discovery knows.
    pub fn has_unknown_source(&self) -> bool {
        self.configured_sources()
            .iter()
            .any(|key| !self.sources.get(key).is_some_and(|s| s.answered))
    }

    /// What a restarted discovery needs: the namespace names read last and every answered
    /// source's targets.
    pub fn state(&self) -> State {
        State {
            version: 0,
            namespace_names: matches!(self.namespaces, Namespaces::Parameter(_))
                .then(|| self.namespace_names.clone()),
            sources: self
                .sources
                .iter()
                .filter(|(_, status)| status.answered)
                .map(|(key, status)| SourceState {
                    kind: key.kind,
                    name: key.name.clone(),
                    last_success: status.last_success,
                    targets: status.targets.clone(),
                })
                .collect(),
        }
    }

    /// Starts from a state saved before a restart: the namespace names read last (when they
    /// come from a parameter) and the targets of every source still configured, served until
    /// that source answers again.
    pub fn restore(&mut self, state: State) {
        if let (Namespaces::Parameter(_), Some(names)) = (&self.namespaces, state.namespace_names) {
            self.namespace_names = names;
        }
        let configured = self.configured_sources();
        for source in state.sources {
            let key = SourceKey {
                kind: source.kind,
                name: source.name,
            };
            if configured.contains(&key) {
                self.sources.insert(
                    key,
                    SourceStatus {
                        targets: source.targets,
                        last_success: source.last_success,
                        answered: true,
                        restored: true,
                        ..SourceStatus::default()
                    },
                );
            }
        }
    }
}

/// Stores a source's result: targets replace the old ones only when the source answered
/// (a partial answer of a source restored from the state file adds to the restored targets
/// instead, until the source answers in full); an error is kept in words and counted.
/// Returns whether the source refreshed cleanly.
fn record(
    sources: &mut BTreeMap<SourceKey, SourceStatus>,
    key: SourceKey,
    result: Result<(Vec<TargetGroup>, Option<RefreshError>), RefreshError>,
) -> bool {
    let status = sources.entry(key.clone()).or_default();
    let error = match result {
        Ok((targets, None)) => {
            status.targets = targets;
            status.answered = true;
            status.restored = false;
            None
        }
        Ok((targets, Some(partial_error))) => {
            status.targets = if status.restored {
                merge(targets, std::mem::take(&mut status.targets))
            } else {
                targets
            };
            status.answered = true;
            Some(partial_error)
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

/// `new`, plus every group of `old` whose address `new` does not have.
fn merge(mut new: Vec<TargetGroup>, old: Vec<TargetGroup>) -> Vec<TargetGroup> {
    let addresses: std::collections::HashSet<String> =
        new.iter().flat_map(|g| g.targets.clone()).collect();
    new.extend(
        old.into_iter()
            .filter(|g| !g.targets.iter().any(|t| addresses.contains(t))),
    );
    new
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
            Err(RefreshError::Deadline(Duration::from_secs(30)))
        ));
        let status = &sources[&key];
        assert_eq!(status.targets, std::slice::from_ref(&target));
        assert_eq!(status.failures, 1);
        assert!(
            status
                .last_error
                .as_ref()
                .is_some_and(|e| e.to_string().contains("deadline"))
        );
        // A partial answer replaces the targets but still counts as a failure.
        assert!(!record(
            &mut sources,
            key.clone(),
            Ok((
                vec![],
                Some(RefreshError::Deadline(Duration::from_secs(30)))
            ))
        ));
        assert_eq!(sources[&key].failures, 2);
        assert!(record(&mut sources, key.clone(), Ok((vec![target], None))));
        assert!(sources[&key].last_error.is_none());
    }

    #[test]
    fn a_restored_source_adds_a_partial_answer_to_its_targets_until_it_answers_in_full() {
        let key = SourceKey::ecs("prod");
        let old = TargetGroup::new("10.0.0.1", 9779);
        let kept = TargetGroup::new("10.0.0.2", 9779);
        let mut moved = TargetGroup::new("10.0.0.2", 9779);
        moved.label("task_id", "b");
        let new = TargetGroup::new("10.0.0.3", 9779);
        let mut sources = BTreeMap::new();
        sources.insert(
            key.clone(),
            SourceStatus {
                targets: vec![old.clone(), kept],
                answered: true,
                restored: true,
                ..SourceStatus::default()
            },
        );
        // Some new tasks could not be described: nothing restored is dropped, and a restored
        // address that the answer has again takes the answer's labels.
        assert!(!record(
            &mut sources,
            key.clone(),
            Ok((
                vec![moved.clone(), new.clone()],
                Some(RefreshError::Deadline(Duration::from_secs(30)))
            ))
        ));
        let mut targets = sources[&key].targets.clone();
        targets.sort();
        assert_eq!(targets, [old, moved.clone(), new.clone()]);
        // A full answer is the truth.
        assert!(record(
            &mut sources,
            key.clone(),
            Ok((vec![new.clone()], None))
        ));
        assert_eq!(sources[&key].targets, std::slice::from_ref(&new));
        assert!(!sources[&key].restored);
        // From then on a partial answer replaces the targets, as without a restart.
        record(
            &mut sources,
            key.clone(),
            Ok((
                vec![moved.clone()],
                Some(RefreshError::Deadline(Duration::from_secs(30))),
            )),
        );
        assert_eq!(sources[&key].targets, [moved]);
    }
}
