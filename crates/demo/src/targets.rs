//! The cluster's scrape targets as Prometheus file_sd target groups, labelled the way
//! `ecs-prom discovery` labels ECS targets.

use crate::cluster::DemoTask;
use file_sd::TargetGroup;
use std::collections::BTreeMap;
use std::path::Path;

/// Job of the exporter sidecars.
pub const EXPORTER_JOB: &str = "ecs-exporter";
/// Job of the demo apps.
pub const APP_JOB: &str = "demo-app";

/// Two groups per task: its demo app and its exporter sidecar; in agent mode, one: its agent
/// sidecar (the agent sends the app's and the task's metrics itself).
///
/// `container_name` is deliberately not a target label: the exporter's own series carry
/// `container_name` for every container of the task, which a target label would overwrite.
pub fn target_groups(tasks: &[DemoTask]) -> Vec<TargetGroup> {
    let mut groups = Vec::new();
    for task in tasks {
        let m = &task.metadata;
        let scraped = match &task.agent_url {
            Some(agent_url) => vec![(crate::cluster::AGENT_JOB, agent_url)],
            None => vec![(APP_JOB, &task.app_url), (EXPORTER_JOB, &task.exporter_url)],
        };
        for (job, url) in scraped {
            let mut labels = BTreeMap::new();
            let mut set = |name: &str, value: &str| {
                if !value.is_empty() {
                    labels.insert(name.to_owned(), value.to_owned());
                }
            };
            set("job", job);
            for (name, value) in m.identity_labels() {
                // The demo names each task by its simulated id (the ARN's last part there).
                if name != "task_id" {
                    set(name, &value);
                }
            }
            set("task_id", &task.id);
            groups.push(TargetGroup {
                targets: vec![url.trim_start_matches("http://").to_owned()],
                labels,
            });
        }
    }
    groups
}

/// Writes `groups` to `path` as a file_sd JSON file, replaced atomically so Prometheus never
/// reads half a file.
pub fn write_file_sd(path: &Path, groups: &[TargetGroup]) -> std::io::Result<()> {
    file_sd::write_atomically(
        path,
        file_sd::render(groups).as_bytes(),
        file_sd::PUBLIC_MODE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_each_target_with_its_task_and_job() {
        let task = crate::cluster::fixture_task();
        let groups = target_groups(&[task]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].targets, ["127.0.0.1:2"]);
        assert_eq!(groups[1].targets, ["127.0.0.1:3"]);
        assert_eq!(groups[0].labels["job"], APP_JOB);
        assert_eq!(groups[1].labels["job"], EXPORTER_JOB);
        let labels = &groups[1].labels;
        assert_eq!(labels["task_id"], "abc");
        assert_eq!(labels["launch_type"], "FARGATE");
        assert!(!labels.contains_key("container_name"));
        let mut with_agent = crate::cluster::fixture_task();
        with_agent.agent_url = Some("http://127.0.0.1:4".to_owned());
        let groups_with_agent = target_groups(&[with_agent]);
        assert_eq!(groups_with_agent.len(), 1);
        assert_eq!(groups_with_agent[0].targets, ["127.0.0.1:4"]);
        assert_eq!(
            groups_with_agent[0].labels["job"],
            crate::cluster::AGENT_JOB
        );
        assert_eq!(groups_with_agent[0].labels["task_id"], "abc");
        assert!(
            !labels.contains_key("service"),
            "no ServiceName in the fixture"
        );
        // Values checked against the fixture by hand.
        // The fixture's Cluster is arn:aws:ecs:us-east-1:829490980523:cluster/prom-ecs-exporter-sandbox.
        assert_eq!(labels["cluster"], "prom-ecs-exporter-sandbox");
        assert_eq!(
            labels["task_family"],
            "prom-ecs-exporter-sandbox-main-fargate"
        );
        assert_eq!(labels["task_revision"], "9");
        assert_eq!(labels["availability_zone"], "us-east-1a");
    }

    #[test]
    fn writes_a_complete_file_that_prometheus_reads() {
        let dir = std::env::temp_dir().join(format!("ecs-prom-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("targets.json");
        let group = TargetGroup {
            targets: vec!["127.0.0.1:9".to_owned()],
            labels: BTreeMap::from([("job".to_owned(), "x".to_owned())]),
        };
        write_file_sd(&path, &[group]).expect("written");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(
            written,
            serde_json::json!([{"targets": ["127.0.0.1:9"], "labels": {"job": "x"}}])
        );
        let leftovers = std::fs::read_dir(&dir).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
