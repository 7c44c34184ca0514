//! Where the AWS settings come from: the standard environment variables and shared
//! configuration files, read once into one value the rest of the crate trusts.

use std::path::PathBuf;

/// The AWS APIs ecs-prom calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Amazon ECS.
    Ecs,
    /// AWS Cloud Map.
    CloudMap,
    /// AWS Systems Manager Parameter Store.
    Ssm,
    /// Amazon EC2 (only `DescribeInstances`).
    Ec2,
}

impl Service {
    /// The name in endpoints and SigV4 credential scopes.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::CloudMap => "servicediscovery",
            Service::Ssm => "ssm",
            Service::Ec2 => "ec2",
        }
    }

    /// The `X-Amz-Target` prefix of the service's JSON 1.1 operations.
    pub fn json_target_prefix(self) -> &'static str {
        match self {
            Service::Ecs => "AmazonEC2ContainerServiceV20141113",
            Service::CloudMap => "Route53AutoNaming_v20170314",
            Service::Ssm => "AmazonSSM",
            Service::Ec2 => "",
        }
    }

    /// The service-specific endpoint variable (`AWS_ENDPOINT_URL_<SERVICE ID>`).
    pub fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Ecs => "AWS_ENDPOINT_URL_ECS",
            Service::CloudMap => "AWS_ENDPOINT_URL_SERVICEDISCOVERY",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
        }
    }
}

/// Every environment variable this crate reads.
pub mod vars {
    /// Region.
    pub const REGION: &str = "AWS_REGION";
    /// Region, the older name.
    pub const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    /// Endpoint of every service (service-specific variables win).
    pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    /// `true`: ignore every configured endpoint URL.
    pub const IGNORE_CONFIGURED_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
    /// Static credentials.
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// Static credentials.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// Static credentials, temporary.
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// Profile in the shared files.
    pub const PROFILE: &str = "AWS_PROFILE";
    /// Shared credentials file.
    pub const SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
    /// Shared config file.
    pub const CONFIG_FILE: &str = "AWS_CONFIG_FILE";
    /// Set by ECS when the task has a role: path on 169.254.170.2.
    pub const CONTAINER_CREDENTIALS_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    /// Full URL of a container credentials endpoint.
    pub const CONTAINER_CREDENTIALS_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    /// Authorization token for the full URI.
    pub const CONTAINER_AUTHORIZATION_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
    /// File holding the authorization token for the full URI.
    pub const CONTAINER_AUTHORIZATION_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
    /// `true`: never ask the EC2 instance metadata service.
    pub const EC2_METADATA_DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
    /// Home directory, for `~/.aws/`.
    pub const HOME: &str = "HOME";
}

/// The finished AWS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Region, if one was found.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// The service-specific endpoint URLs that were set.
    pub service_endpoints: Vec<(Service, String)>,
    /// Static credentials from the environment.
    pub env_credentials: Option<StaticKeys>,
    /// Profile name.
    pub profile: String,
    /// Static keys of that profile in the shared files, if it has them.
    pub profile_credentials: Option<StaticKeys>,
    /// A reason the profile could not give static keys, for the error message.
    pub profile_note: Option<String>,
    /// The container credentials endpoint and its authorization, when running on ECS.
    pub container_credentials: Option<ContainerCredentialsSource>,
    /// Whether the EC2 instance metadata service may be asked.
    pub imds_enabled: bool,
}

/// Keys written down somewhere.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary keys.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The ECS container credentials endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentialsSource {
    /// URL to GET.
    pub url: String,
    /// `Authorization` header value, given directly.
    pub token: Option<String>,
    /// File to read the `Authorization` header value from on every request.
    pub token_file: Option<PathBuf>,
}

/// The address ECS serves task-role credentials on.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";

impl AwsConfig {
    /// Reads the settings through `env` (the process environment, or a map in tests), and
    /// the shared files it points to.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let truthy = |name: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let profile = get(vars::PROFILE).unwrap_or_else(|| "default".to_owned());
        let home = get(vars::HOME).map(PathBuf::from);
        let aws_file = |var: &str, name: &str| {
            get(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let credentials_file = aws_file(vars::SHARED_CREDENTIALS_FILE, "credentials")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let config_file = aws_file(vars::CONFIG_FILE, "config")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let from_credentials = ini_section(&credentials_file, &profile);
        let config_section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let from_config = ini_section(&config_file, &config_section);
        let profile_value = |key: &str| {
            from_credentials
                .iter()
                .chain(&from_config)
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let profile_credentials = match (
            profile_value("aws_access_key_id"),
            profile_value("aws_secret_access_key"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: profile_value("aws_session_token"),
            }),
            _ => None,
        };
        let profile_note = [
            "role_arn",
            "sso_session",
            "sso_start_url",
            "credential_process",
        ]
        .into_iter()
        .find(|key| profile_value(key).is_some())
        .map(|key| {
            format!(
                "profile {profile:?} uses {key}, which ecs-prom does not support: \
                     export its keys (aws configure export-credentials) or use a task role"
            )
        });
        let env_credentials = match (get(vars::ACCESS_KEY_ID), get(vars::SECRET_ACCESS_KEY)) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: get(vars::SESSION_TOKEN),
            }),
            _ => None,
        };
        let container_credentials = get(vars::CONTAINER_CREDENTIALS_RELATIVE_URI)
            .map(|path| format!("{ECS_CREDENTIALS_HOST}{path}"))
            .or_else(|| get(vars::CONTAINER_CREDENTIALS_FULL_URI))
            .map(|url| ContainerCredentialsSource {
                url,
                token: get(vars::CONTAINER_AUTHORIZATION_TOKEN),
                token_file: get(vars::CONTAINER_AUTHORIZATION_TOKEN_FILE).map(PathBuf::from),
            });
        let ignore_endpoints = truthy(vars::IGNORE_CONFIGURED_ENDPOINT_URLS);
        let service_endpoints = if ignore_endpoints {
            Vec::new()
        } else {
            [Service::Ecs, Service::CloudMap, Service::Ssm, Service::Ec2]
                .into_iter()
                .filter_map(|s| get(s.endpoint_variable()).map(|url| (s, url)))
                .collect()
        };
        AwsConfig {
            region: get(vars::REGION)
                .or_else(|| get(vars::DEFAULT_REGION))
                .or_else(|| profile_value("region")),
            endpoint_url: get(vars::ENDPOINT_URL).filter(|_| !ignore_endpoints),
            service_endpoints,
            env_credentials,
            profile,
            profile_credentials,
            profile_note,
            container_credentials,
            imds_enabled: !truthy(vars::EC2_METADATA_DISABLED),
        }
    }

    /// The endpoint to call `service` at in `region`: a configured URL, else AWS' own.
    pub fn endpoint(&self, service: Service, region: &str) -> String {
        let configured = self
            .service_endpoints
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, url)| url.clone())
            .or_else(|| self.endpoint_url.clone());
        configured.unwrap_or_else(|| {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{}.{region}.{suffix}", service.signing_name())
        })
    }
}

/// The `key = value` pairs of `[section]` in an INI-style AWS file.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            pairs.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    pairs
}

/// The region in an ARN (`arn:aws:ecs:eu-west-1:123:task/...` gives `eu-west-1`).
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    (arn.starts_with("arn:") && !region.is_empty()).then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> AwsConfig {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AwsConfig::from_env(|key| map.get(key).cloned())
    }

    #[test]
    fn region_and_endpoints_follow_the_standard_precedence() {
        let c = config(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:6000"),
        ]);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.endpoint(Service::Ecs, "eu-west-1"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            c.endpoint(Service::Ssm, "eu-west-1"),
            "http://127.0.0.1:6000"
        );
        let c = config(&[("AWS_REGION", "us-east-2"), ("AWS_DEFAULT_REGION", "x")]);
        assert_eq!(c.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            c.endpoint(Service::CloudMap, "us-east-2"),
            "https://servicediscovery.us-east-2.amazonaws.com"
        );
        assert_eq!(
            c.endpoint(Service::Ecs, "cn-north-1"),
            "https://ecs.cn-north-1.amazonaws.com.cn"
        );
        let ignored = config(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(
            ignored.endpoint(Service::Ec2, "us-east-1"),
            "https://ec2.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn ecs_task_role_endpoint_comes_from_the_relative_uri() {
        let c = config(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )]);
        let source = c.container_credentials.expect("set");
        assert_eq!(source.url, "http://169.254.170.2/v2/credentials/abc");
        assert!(config(&[]).container_credentials.is_none());
    }

    #[test]
    fn reads_static_keys_and_region_from_the_shared_files() {
        let dir = std::env::temp_dir().join(format!("aws-api-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let credentials = dir.join("credentials");
        let config_path = dir.join("config");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\
             [ops]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token = t2\n",
        )
        .expect("write");
        std::fs::write(
            &config_path,
            "[profile ops]\nregion = ap-south-1\n[profile sso]\nsso_session = corp\n",
        )
        .expect("write");
        let files = [
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                credentials.to_str().expect("utf-8"),
            ),
            ("AWS_CONFIG_FILE", config_path.to_str().expect("utf-8")),
        ];
        let mut ops = files.to_vec();
        ops.push(("AWS_PROFILE", "ops"));
        let c = config(&ops);
        let keys = c.profile_credentials.expect("ops keys");
        assert_eq!(keys.access_key_id, "AKIA2");
        assert_eq!(keys.session_token.as_deref(), Some("t2"));
        assert_eq!(c.region.as_deref(), Some("ap-south-1"));
        assert_eq!(
            config(&files)
                .profile_credentials
                .expect("default")
                .access_key_id,
            "AKIA1"
        );
        let mut sso = files.to_vec();
        sso.push(("AWS_PROFILE", "sso"));
        let c = config(&sso);
        assert!(c.profile_credentials.is_none());
        assert!(c.profile_note.expect("explained").contains("sso_session"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn finds_the_region_in_an_arn() {
        assert_eq!(
            region_of_arn("arn:aws:ecs:eu-west-1:123456789012:task/c/abc"),
            Some("eu-west-1")
        );
        assert_eq!(region_of_arn("task/abc"), None);
    }
}
