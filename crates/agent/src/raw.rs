//! The configuration file as written: every field optional so that defaults and checks can
//! tell absent from given, unknown fields refused, and the values with their own syntax
//! (durations, sizes, label names, targets) checked while reading so their errors carry a line.

use relabel::RelabelConfig;
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration in Prometheus' syntax.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::duration::parse_duration(&text)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// A byte size in Prometheus' syntax (negative allowed, as in Go).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) i64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::size::parse_byte_size(&text)
            .map(ByteSize)
            .map_err(serde::de::Error::custom)
    }
}

/// A label name as Prometheus 2 accepts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LabelName(pub(crate) String);

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus 2's label names.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if is_valid_label_name(&name) {
            Ok(LabelName(name))
        } else {
            Err(serde::de::Error::custom(format!(
                "{name:?} is not a valid label name"
            )))
        }
    }
}

/// A scrape target address: Prometheus refuses an empty one or one with a `/` in it.
#[derive(Debug, Clone)]
pub(crate) struct Target(pub(crate) String);

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let address = String::deserialize(deserializer)?;
        if address.is_empty() {
            Err(serde::de::Error::custom("no address"))
        } else if address.contains('/') {
            Err(serde::de::Error::custom(format!(
                "{address:?} is not a valid hostname"
            )))
        } else {
            Ok(Target(address))
        }
    }
}

/// Label names to values, names checked; a null value is the empty string, as in Go.
pub(crate) type LabelMap = BTreeMap<LabelName, Option<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) global: Option<RawGlobal>,
    pub(crate) scrape_configs: Option<Vec<Spanned<RawScrape>>>,
    pub(crate) remote_write: Option<Vec<Spanned<RawRemoteWrite>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub(crate) scrape_interval: Option<Spanned<PromDuration>>,
    pub(crate) scrape_timeout: Option<Spanned<PromDuration>>,
    pub(crate) external_labels: Option<LabelMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScrape {
    pub(crate) job_name: Option<Spanned<String>>,
    pub(crate) scrape_interval: Option<Spanned<PromDuration>>,
    pub(crate) scrape_timeout: Option<Spanned<PromDuration>>,
    pub(crate) metrics_path: Option<String>,
    pub(crate) scheme: Option<crate::Scheme>,
    pub(crate) params: Option<BTreeMap<String, Vec<String>>>,
    pub(crate) honor_labels: Option<bool>,
    pub(crate) honor_timestamps: Option<bool>,
    pub(crate) static_configs: Option<Vec<RawStatic>>,
    pub(crate) file_sd_configs: Option<Vec<Spanned<RawFileSd>>>,
    pub(crate) http_sd_configs: Option<Vec<Spanned<RawHttpSd>>>,
    pub(crate) ecs_task_sd_configs: Option<Vec<Spanned<RawEcsTaskSd>>>,
    pub(crate) ecs_sd_configs: Option<Vec<Spanned<RawEcsSd>>>,
    pub(crate) cloudmap_sd_configs: Option<Vec<Spanned<RawCloudMapSd>>>,
    pub(crate) relabel_configs: Option<Vec<RelabelConfig>>,
    pub(crate) metric_relabel_configs: Option<Vec<RelabelConfig>>,
    pub(crate) sample_limit: Option<u64>,
    pub(crate) label_limit: Option<u64>,
    pub(crate) body_size_limit: Option<ByteSize>,
    pub(crate) basic_auth: Option<Spanned<RawBasicAuth>>,
    pub(crate) authorization: Option<Spanned<RawAuthorization>>,
    pub(crate) tls_config: Option<Spanned<RawTls>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatic {
    pub(crate) targets: Option<Vec<Target>>,
    pub(crate) labels: Option<LabelMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSd {
    pub(crate) files: Option<Vec<Spanned<String>>>,
    pub(crate) refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpSd {
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEcsTaskSd {
    pub(crate) scope: Option<Spanned<String>>,
    pub(crate) metadata_url: Option<Spanned<String>>,
    pub(crate) refresh_interval: Option<PromDuration>,
    pub(crate) task_metrics: Option<bool>,
    pub(crate) task_metrics_job: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEcsSd {
    pub(crate) region: Option<String>,
    pub(crate) clusters: Option<Vec<String>>,
    pub(crate) refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCloudMapSd {
    pub(crate) region: Option<String>,
    pub(crate) namespaces: Option<Vec<String>>,
    pub(crate) refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) password_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) credentials: Option<String>,
    pub(crate) credentials_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) cert_file: Option<Spanned<String>>,
    pub(crate) key_file: Option<Spanned<String>>,
    pub(crate) server_name: Option<String>,
    pub(crate) insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteWrite {
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) remote_timeout: Option<PromDuration>,
    pub(crate) headers: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) write_relabel_configs: Option<Vec<RelabelConfig>>,
    pub(crate) queue_config: Option<RawQueue>,
    pub(crate) sigv4: Option<Spanned<RawSigV4>>,
    pub(crate) basic_auth: Option<Spanned<RawBasicAuth>>,
    pub(crate) authorization: Option<Spanned<RawAuthorization>>,
    pub(crate) tls_config: Option<Spanned<RawTls>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub(crate) capacity: Option<u64>,
    pub(crate) min_shards: Option<u64>,
    pub(crate) max_shards: Option<u64>,
    pub(crate) max_samples_per_send: Option<u64>,
    pub(crate) batch_send_deadline: Option<PromDuration>,
    pub(crate) min_backoff: Option<PromDuration>,
    pub(crate) max_backoff: Option<PromDuration>,
    pub(crate) retry_on_http_429: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigV4 {
    pub(crate) region: Option<String>,
    pub(crate) access_key: Option<String>,
    pub(crate) secret_key: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) role_arn: Option<String>,
}
