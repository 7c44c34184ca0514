//! The region of the ECS task ecs-prom runs in, read from its task metadata: the last place
//! the region is looked for, for EC2 tasks whose environment names none.

use crate::config::region_of_arn;
use serde::Deserialize;
use std::time::Duration;

/// The variable ECS sets to the task metadata endpoint of the container.
pub const METADATA_URI_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// Deadline of the metadata request: the endpoint is local to the host.
const TIMEOUT: Duration = Duration::from_secs(2);
/// A task document is a few kilobytes; more is not a task document.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why the task's region could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// Not on ECS, or the metadata endpoint is not given.
    #[error(
        "no AWS region: set AWS_REGION or --aws.region (not on ECS: {METADATA_URI_V4} is not set)"
    )]
    NotOnEcs,
    /// The metadata endpoint did not answer usefully.
    #[error(
        "no AWS region: set AWS_REGION or --aws.region (reading this task's metadata for it failed)"
    )]
    Metadata(#[source] web::ClientError),
    /// The endpoint answered, but not with a task whose ARN names a region.
    #[error(
        "no AWS region: set AWS_REGION or --aws.region (the task metadata at {url} names no task ARN with a region: {reason})"
    )]
    NoTaskArn {
        /// What was asked.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
}

#[derive(Deserialize)]
struct TaskDocument {
    #[serde(rename = "TaskARN", default)]
    task_arn: String,
}

/// The region in the task ARN of `${ECS_CONTAINER_METADATA_URI_V4}/task`; `env` reads the
/// variable.
pub async fn region_of_this_task(
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, RegionError> {
    let base = env(METADATA_URI_V4)
        .filter(|u| !u.trim().is_empty())
        .ok_or(RegionError::NotOnEcs)?;
    let url = format!("{}/task", base.trim().trim_end_matches('/'));
    let client = web::Client::new(TIMEOUT).with_max_body_bytes(MAX_BODY_BYTES);
    let response = client
        .get(&url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(RegionError::Metadata)?;
    let no_arn = |reason: String| RegionError::NoTaskArn {
        url: url.clone(),
        reason,
    };
    if !response.status.is_success() {
        return Err(no_arn(format!("HTTP {}", response.status.as_u16())));
    }
    let task: TaskDocument =
        serde_json::from_slice(&response.body).map_err(|e| no_arn(e.to_string()))?;
    region_of_arn(&task.task_arn)
        .map(str::to_owned)
        .ok_or_else(|| no_arn(format!("TaskARN {:?}", task.task_arn)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback endpoint answering every request with `body` (status 200).
    async fn endpoint(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{address}/v4/abc")
    }

    #[tokio::test]
    async fn the_region_comes_from_the_task_arn() {
        let url = endpoint(
            r#"{"Cluster":"prod","TaskARN":"arn:aws:ecs:ap-south-1:111122223333:task/prod/abc"}"#,
        )
        .await;
        let region = region_of_this_task(|_| Some(url.clone()))
            .await
            .expect("a region");
        assert_eq!(region, "ap-south-1");
    }

    #[tokio::test]
    async fn no_endpoint_or_no_arn_is_a_clear_error() {
        let error = region_of_this_task(|_| None).await.expect_err("not on ECS");
        assert!(
            error
                .to_string()
                .contains("ECS_CONTAINER_METADATA_URI_V4 is not set")
        );
        let url = endpoint(r#"{"Cluster":"prod"}"#).await;
        let error = region_of_this_task(|_| Some(url.clone()))
            .await
            .expect_err("no ARN");
        assert!(error.to_string().contains("names no task ARN"), "{error}");
    }
}
