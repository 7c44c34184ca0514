//! Where the AWS settings come from: the standard environment variables and shared
//! configuration files, read once into one value the rest of the crate trusts, with the
//! credential source chosen in the SDKs' order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// AWS STS (`AssumeRole`, `AssumeRoleWithWebIdentity`), for credentials.
    Sts,
    /// Amazon Managed Service for Prometheus (remote write to a workspace).
    Aps,
}

impl Service {
    /// Every service, for reading their endpoint variables.
    pub const ALL: [Service; 6] = [
        Service::Ecs,
        Service::CloudMap,
        Service::Ssm,
        Service::Ec2,
        Service::Sts,
        Service::Aps,
    ];

    /// The name in endpoints and SigV4 credential scopes.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::CloudMap => "servicediscovery",
            Service::Ssm => "ssm",
            Service::Ec2 => "ec2",
            Service::Sts => "sts",
            Service::Aps => "aps",
        }
    }

    /// The first label of the service's regional host name.
    pub fn endpoint_prefix(self) -> &'static str {
        match self {
            Service::Aps => "aps-workspaces",
            other => other.signing_name(),
        }
    }

    /// The `X-Amz-Target` prefix of the service's JSON 1.1 operations (empty for the Query
    /// protocol services).
    pub fn json_target_prefix(self) -> &'static str {
        match self {
            Service::Ecs => "AmazonEC2ContainerServiceV20141113",
            Service::CloudMap => "Route53AutoNaming_v20170314",
            Service::Ssm => "AmazonSSM",
            Service::Ec2 | Service::Sts | Service::Aps => "",
        }
    }

    /// The service-specific endpoint variable (`AWS_ENDPOINT_URL_<SERVICE ID>`).
    pub fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Ecs => "AWS_ENDPOINT_URL_ECS",
            Service::CloudMap => "AWS_ENDPOINT_URL_SERVICEDISCOVERY",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::Aps => "AWS_ENDPOINT_URL_AMP",
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
    /// Endpoint of the IAM Identity Center (SSO) portal.
    pub const ENDPOINT_URL_SSO: &str = "AWS_ENDPOINT_URL_SSO";
    /// `true`: ignore every configured endpoint URL.
    pub const IGNORE_CONFIGURED_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
    /// Static credentials.
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// Static credentials.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// Static credentials, temporary.
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// File holding a web identity (OIDC) token, exchanged for the role `AWS_ROLE_ARN`.
    pub const WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
    /// The role a web identity token is exchanged for.
    pub const ROLE_ARN: &str = "AWS_ROLE_ARN";
    /// Session name of that role.
    pub const ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
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

/// Why the AWS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable has a value that must not be used.
    #[error("{variable}: {reason}")]
    Variable {
        /// The variable.
        variable: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A profile in the shared files cannot give credentials.
    #[error("AWS profile {profile:?}: {reason}")]
    Profile {
        /// The profile.
        profile: String,
        /// What is wrong with it.
        reason: String,
    },
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
    /// Profile name.
    pub profile: String,
    /// Where credentials come from, or why the configured source cannot be used.
    pub credentials: Result<CredentialChain, ConfigError>,
}

/// The credential source chosen from the standard chain, and the roles assumed on top of it,
/// the first with the source's credentials, each next one with the previous role's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChain {
    /// Where the first credentials come from.
    pub base: BaseCredentials,
    /// Roles assumed in turn (`source_profile` chains, then `--aws.role-arn`).
    pub roles: Vec<RoleSettings>,
}

impl CredentialChain {
    fn of(base: BaseCredentials) -> Self {
        CredentialChain {
            base,
            roles: Vec::new(),
        }
    }
}

/// A source of credentials that needs no other credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseCredentials {
    /// Keys from the environment or a profile.
    Static(StaticKeys),
    /// A web identity token exchanged with STS `AssumeRoleWithWebIdentity`.
    WebIdentity(WebIdentity),
    /// An IAM Identity Center (SSO) profile and the token `aws sso login` cached.
    Sso(SsoSettings),
    /// A profile's `credential_process` command.
    Process {
        /// The profile, for messages.
        profile: String,
        /// The command, run with `sh -c`.
        command: String,
    },
    /// The ECS container credentials endpoint (the task role).
    Container(ContainerCredentialsSource),
    /// The EC2 instance metadata service (the instance role).
    InstanceMetadata,
    /// Nothing is configured and the instance metadata service is disabled.
    Nothing,
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

/// A role to assume with STS `AssumeRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    /// The role.
    pub role_arn: String,
    /// The external id its trust policy asks for.
    pub external_id: Option<String>,
    /// Session name, seen in CloudTrail [default: `ecs-prom-<unix time>`].
    pub session_name: Option<String>,
    /// Lifetime of the assumed credentials [default: STS', one hour].
    pub duration_seconds: Option<u32>,
}

/// A web identity token file and the role it is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    /// The token file, read again at each renewal (it is rotated underneath).
    pub token_file: PathBuf,
    /// The role.
    pub role_arn: String,
    /// Session name [default: `ecs-prom-<unix time>`].
    pub session_name: Option<String>,
}

/// An IAM Identity Center (SSO) profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// The profile, for the `aws sso login --profile` hint.
    pub profile: String,
    /// What the AWS CLI hashes into the cache file name: the session name, or the start URL
    /// of a legacy profile.
    pub cache_key: String,
    /// `~/.aws/sso/cache`.
    pub cache_dir: PathBuf,
    /// The account of the role.
    pub account_id: String,
    /// The role (permission set) name.
    pub role_name: String,
    /// The portal: `https://portal.sso.<sso_region>.amazonaws.com` unless overridden.
    pub portal_url: String,
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

/// The rule for `AWS_CONTAINER_CREDENTIALS_FULL_URI`, the AWS SDKs' own.
const CONTAINER_URL_RULE: &str = "the container credentials endpoint must use https, or plain \
    http only to a loopback address (127.0.0.0/8, ::1, localhost), 169.254.170.2, \
    169.254.170.23 or fd00:ec2::23, because the authorization token and the credentials \
    travel in clear text over http";

/// Whether the AWS SDKs would send container credentials requests to `url`.
fn container_url_allowed(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => true,
        (Some("http"), Some(host)) => {
            if host.eq_ignore_ascii_case("localhost") {
                return true;
            }
            match host.trim_start_matches('[').trim_end_matches(']').parse() {
                Ok(IpAddr::V4(ip)) => {
                    ip.is_loopback()
                        || ip == Ipv4Addr::new(169, 254, 170, 2)
                        || ip == Ipv4Addr::new(169, 254, 170, 23)
                }
                Ok(IpAddr::V6(ip)) => {
                    ip.is_loopback() || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
                }
                Err(_) => false,
            }
        }
        _ => false,
    }
}

/// The two shared files' text.
struct SharedFiles {
    credentials: String,
    config: String,
}

impl SharedFiles {
    /// The settings of profile `name`: the credentials file's first, then the config file's.
    fn profile(&self, name: &str) -> Vec<(String, String)> {
        let mut pairs = ini_section(&self.credentials, name);
        pairs.extend(ini_section(&self.config, &format!("profile {name}")));
        if name == "default" {
            pairs.extend(ini_section(&self.config, "default"));
        }
        pairs
    }

    /// The settings of `[sso-session name]` in the config file.
    fn sso_session(&self, name: &str) -> Vec<(String, String)> {
        ini_section(&self.config, &format!("sso-session {name}"))
    }
}

/// The first non-empty value of `key` among `pairs`.
fn value_of(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
}

/// What profiles may point at besides other profiles.
struct Sources {
    files: SharedFiles,
    env_keys: Option<StaticKeys>,
    container: Option<Result<ContainerCredentialsSource, ConfigError>>,
    home: Option<PathBuf>,
    sso_endpoint: Option<String>,
}

impl Sources {
    /// The credentials profile `name` gives, following `source_profile`; `None` when the
    /// profile names no credentials at all. `visited` holds the profiles that led here.
    fn profile_chain(
        &self,
        name: &str,
        visited: &mut Vec<String>,
    ) -> Result<Option<CredentialChain>, ConfigError> {
        let pairs = self.files.profile(name);
        let value = |key: &str| value_of(&pairs, key);
        let fail = |reason: String| ConfigError::Profile {
            profile: name.to_owned(),
            reason,
        };
        let keys = match (value("aws_access_key_id"), value("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: value("aws_session_token"),
            }),
            _ => None,
        };
        // As in the SDKs: a source profile's own keys end the chain, even if it also names a
        // role; the profile in use prefers its role.
        if !visited.is_empty()
            && let Some(keys) = keys.clone()
        {
            return Ok(Some(CredentialChain::of(BaseCredentials::Static(keys))));
        }
        visited.push(name.to_owned());
        if let Some(role_arn) = value("role_arn") {
            if let Some(token_file) = value("web_identity_token_file") {
                return Ok(Some(CredentialChain::of(BaseCredentials::WebIdentity(
                    WebIdentity {
                        token_file: PathBuf::from(token_file),
                        role_arn,
                        session_name: value("role_session_name"),
                    },
                ))));
            }
            let duration_seconds = match value("duration_seconds") {
                None => None,
                Some(text) => Some(text.parse().map_err(|_| {
                    fail(format!(
                        "duration_seconds = {text:?} is not a whole number of seconds"
                    ))
                })?),
            };
            let role = RoleSettings {
                role_arn,
                external_id: value("external_id"),
                session_name: value("role_session_name"),
                duration_seconds,
            };
            let mut chain = match (value("source_profile"), value("credential_source")) {
                (Some(_), Some(_)) => {
                    return Err(fail(
                        "has both source_profile and credential_source; keep one".to_owned(),
                    ));
                }
                (Some(source), None) if source == name => {
                    CredentialChain::of(BaseCredentials::Static(keys.ok_or_else(|| {
                        fail(
                            "source_profile is the profile itself, which has no \
                             aws_access_key_id and aws_secret_access_key"
                                .to_owned(),
                        )
                    })?))
                }
                (Some(source), None) if visited.contains(&source) => {
                    return Err(fail(format!(
                        "source_profile {source:?} loops back ({} -> {source})",
                        visited.join(" -> ")
                    )));
                }
                (Some(source), None) => self.profile_chain(&source, visited)?.ok_or_else(|| {
                    fail(format!(
                        "its source_profile {source:?} has no credentials (keys, role_arn, \
                         SSO or credential_process)"
                    ))
                })?,
                (None, Some(source)) => {
                    CredentialChain::of(self.credential_source(&source).map_err(fail)?)
                }
                (None, None) => {
                    return Err(fail(
                        "role_arn needs source_profile or credential_source".to_owned(),
                    ));
                }
            };
            chain.roles.push(role);
            return Ok(Some(chain));
        }
        if value("sso_session").is_some() || value("sso_start_url").is_some() {
            return self
                .sso(name, &pairs)
                .map(|sso| Some(CredentialChain::of(BaseCredentials::Sso(sso))));
        }
        if let Some(command) = value("credential_process") {
            return Ok(Some(CredentialChain::of(BaseCredentials::Process {
                profile: name.to_owned(),
                command,
            })));
        }
        Ok(keys.map(|keys| CredentialChain::of(BaseCredentials::Static(keys))))
    }

    /// A role profile's `credential_source`.
    fn credential_source(&self, source: &str) -> Result<BaseCredentials, String> {
        if source.eq_ignore_ascii_case("Environment") {
            self.env_keys
                .clone()
                .map(BaseCredentials::Static)
                .ok_or_else(|| {
                    "credential_source = Environment, but AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY are not set"
                        .to_owned()
                })
        } else if source.eq_ignore_ascii_case("Ec2InstanceMetadata") {
            Ok(BaseCredentials::InstanceMetadata)
        } else if source.eq_ignore_ascii_case("EcsContainer") {
            match &self.container {
                Some(Ok(container)) => Ok(BaseCredentials::Container(container.clone())),
                Some(Err(error)) => Err(error.to_string()),
                None => Err("credential_source = EcsContainer, but neither \
                     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI \
                     is set"
                    .to_owned()),
            }
        } else {
            Err(format!(
                "credential_source = {source:?}: use Environment, Ec2InstanceMetadata or EcsContainer"
            ))
        }
    }

    /// An SSO profile, in the `sso_session` form or the legacy `sso_start_url` one.
    fn sso(&self, name: &str, pairs: &[(String, String)]) -> Result<SsoSettings, ConfigError> {
        let fail = |reason: String| ConfigError::Profile {
            profile: name.to_owned(),
            reason,
        };
        let (cache_key, region) = match value_of(pairs, "sso_session") {
            Some(session) => {
                let section = self.files.sso_session(&session);
                if section.is_empty() {
                    return Err(fail(format!(
                        "sso_session = {session}, but the config file has no [sso-session {session}] section"
                    )));
                }
                let region = value_of(&section, "sso_region").or(value_of(pairs, "sso_region"));
                (session, region)
            }
            None => (
                value_of(pairs, "sso_start_url").unwrap_or_default(),
                value_of(pairs, "sso_region"),
            ),
        };
        let needed = |key: &str, value: Option<String>| {
            value.ok_or_else(|| fail(format!("an SSO profile needs {key}")))
        };
        let region = needed("sso_region", region)?;
        let account_id = needed("sso_account_id", value_of(pairs, "sso_account_id"))?;
        let role_name = needed("sso_role_name", value_of(pairs, "sso_role_name"))?;
        let home = self.home.clone().ok_or_else(|| {
            fail(
                "HOME is not set, so the SSO token cache (~/.aws/sso/cache) cannot be found".into(),
            )
        })?;
        let portal_url = self
            .sso_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://portal.sso.{region}.{}", dns_suffix(&region)));
        Ok(SsoSettings {
            profile: name.to_owned(),
            cache_key,
            cache_dir: home.join(".aws").join("sso").join("cache"),
            account_id,
            role_name,
            portal_url,
        })
    }
}

/// The DNS suffix of AWS endpoints in `region`.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

impl AwsConfig {
    /// Reads the settings through `env` (the process environment, or a map in tests), and
    /// the shared files it points to. A credential source that cannot be used is kept as
    /// the error in `credentials`, which every call then reports; [`AwsConfig::load`] fails
    /// on it instead.
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
        let read = |path: Option<PathBuf>| {
            path.and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        let files = SharedFiles {
            credentials: read(aws_file(vars::SHARED_CREDENTIALS_FILE, "credentials")),
            config: read(aws_file(vars::CONFIG_FILE, "config")),
        };
        let region = get(vars::REGION)
            .or_else(|| get(vars::DEFAULT_REGION))
            .or_else(|| value_of(&files.profile(&profile), "region"));
        let env_keys = match (get(vars::ACCESS_KEY_ID), get(vars::SECRET_ACCESS_KEY)) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: get(vars::SESSION_TOKEN),
            }),
            _ => None,
        };
        let container = match (
            get(vars::CONTAINER_CREDENTIALS_RELATIVE_URI),
            get(vars::CONTAINER_CREDENTIALS_FULL_URI),
        ) {
            (Some(path), _) => Some(Ok(format!("{ECS_CREDENTIALS_HOST}{path}"))),
            (None, Some(url)) if container_url_allowed(url.trim()) => Some(Ok(url.trim().into())),
            (None, Some(url)) => Some(Err(ConfigError::Variable {
                variable: vars::CONTAINER_CREDENTIALS_FULL_URI,
                reason: format!("{url:?} is not allowed: {CONTAINER_URL_RULE}"),
            })),
            (None, None) => None,
        }
        .map(|url| {
            url.map(|url| ContainerCredentialsSource {
                url,
                token: get(vars::CONTAINER_AUTHORIZATION_TOKEN),
                token_file: get(vars::CONTAINER_AUTHORIZATION_TOKEN_FILE).map(PathBuf::from),
            })
        });
        let web_identity = match (get(vars::WEB_IDENTITY_TOKEN_FILE), get(vars::ROLE_ARN)) {
            (Some(token_file), Some(role_arn)) => Some(Ok(WebIdentity {
                token_file: PathBuf::from(token_file),
                role_arn,
                session_name: get(vars::ROLE_SESSION_NAME),
            })),
            (Some(_), None) => Some(Err(ConfigError::Variable {
                variable: vars::WEB_IDENTITY_TOKEN_FILE,
                reason: format!("is set, but {} (the role to assume) is not", vars::ROLE_ARN),
            })),
            (None, _) => None,
        };
        let ignore_endpoints = truthy(vars::IGNORE_CONFIGURED_ENDPOINT_URLS);
        let endpoint_url = get(vars::ENDPOINT_URL).filter(|_| !ignore_endpoints);
        let service_endpoints = if ignore_endpoints {
            Vec::new()
        } else {
            Service::ALL
                .into_iter()
                .filter_map(|s| get(s.endpoint_variable()).map(|url| (s, url)))
                .collect()
        };
        let sources = Sources {
            files,
            env_keys,
            container,
            home,
            sso_endpoint: get(vars::ENDPOINT_URL_SSO)
                .filter(|_| !ignore_endpoints)
                .or_else(|| endpoint_url.clone()),
        };
        // The SDKs' default chain: the first source that is configured is the one used. The
        // one exception: a profile chosen by name whose role takes its source credentials from
        // the environment would otherwise never be used (the AWS CLI drops the environment
        // step for `--profile`, which ecs-prom's AWS_PROFILE stands for).
        let role_over_environment = get(vars::PROFILE).is_some()
            && value_of(&sources.files.profile(&profile), "credential_source")
                .is_some_and(|source| source.eq_ignore_ascii_case("Environment"));
        let credentials =
            if let Some(keys) = sources.env_keys.clone().filter(|_| !role_over_environment) {
                Ok(CredentialChain::of(BaseCredentials::Static(keys)))
            } else if let Some(web_identity) = web_identity {
                web_identity.map(|w| CredentialChain::of(BaseCredentials::WebIdentity(w)))
            } else {
                match sources.profile_chain(&profile, &mut Vec::new()) {
                    Ok(Some(chain)) => Ok(chain),
                    Err(error) => Err(error),
                    Ok(None) => match sources.container.clone() {
                        Some(container) => {
                            container.map(|c| CredentialChain::of(BaseCredentials::Container(c)))
                        }
                        None if truthy(vars::EC2_METADATA_DISABLED) => {
                            Ok(CredentialChain::of(BaseCredentials::Nothing))
                        }
                        None => Ok(CredentialChain::of(BaseCredentials::InstanceMetadata)),
                    },
                }
            };
        AwsConfig {
            region,
            endpoint_url,
            service_endpoints,
            profile,
            credentials,
        }
    }

    /// Like [`AwsConfig::from_env`], but a credential source that cannot be used (a profile
    /// missing a setting, a container credentials URL the SDKs would refuse) is an error now
    /// rather than on every call.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let config = AwsConfig::from_env(env);
        if let Err(error) = &config.credentials {
            return Err(error.clone());
        }
        Ok(config)
    }

    /// The same settings with `role` assumed on top of whatever the chain gives.
    pub fn with_role(mut self, role: RoleSettings) -> Self {
        if let Ok(chain) = &mut self.credentials {
            chain.roles.push(role);
        }
        self
    }

    /// The endpoint to call `service` at in `region`: a configured URL, else AWS' own
    /// (regional, for STS too).
    pub fn endpoint(&self, service: Service, region: &str) -> String {
        let configured = self
            .service_endpoints
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, url)| url.clone())
            .or_else(|| self.endpoint_url.clone());
        configured.unwrap_or_else(|| {
            format!(
                "https://{}.{region}.{}",
                service.endpoint_prefix(),
                dns_suffix(region)
            )
        })
    }
}

/// The `key = value` pairs of `[section]` in an INI-style AWS file (runs of spaces in the
/// section name count as one).
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.split_whitespace().eq(section.split_whitespace());
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

    fn base(config: &AwsConfig) -> &BaseCredentials {
        &config.credentials.as_ref().expect("usable").base
    }

    /// A directory with `credentials` and `config` files and the variables pointing at them.
    struct Files {
        dir: PathBuf,
    }

    impl Files {
        fn new(name: &str, credentials: &str, config: &str) -> Files {
            let dir =
                std::env::temp_dir().join(format!("aws-api-config-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            std::fs::write(dir.join("credentials"), credentials).expect("write");
            std::fs::write(dir.join("config"), config).expect("write");
            Files { dir }
        }

        fn env(&self, more: &[(&str, &str)]) -> AwsConfig {
            let credentials = self.dir.join("credentials");
            let config_path = self.dir.join("config");
            let mut pairs = vec![
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    credentials.to_str().expect("utf-8"),
                ),
                ("AWS_CONFIG_FILE", config_path.to_str().expect("utf-8")),
                ("HOME", self.dir.to_str().expect("utf-8")),
            ];
            pairs.extend_from_slice(more);
            config(&pairs)
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn region_and_endpoints_follow_the_standard_precedence() {
        let c = config(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:6000"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:7000"),
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
        assert_eq!(
            c.endpoint(Service::Sts, "eu-west-1"),
            "http://127.0.0.1:7000"
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
        // STS' regional endpoint, not the global sts.amazonaws.com.
        assert_eq!(
            c.endpoint(Service::Sts, "eu-central-1"),
            "https://sts.eu-central-1.amazonaws.com"
        );
        // AMP's workspaces host, as its documentation names it.
        assert_eq!(
            c.endpoint(Service::Aps, "eu-central-1"),
            "https://aps-workspaces.eu-central-1.amazonaws.com"
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
        let BaseCredentials::Container(source) = base(&c) else {
            panic!("{c:?}")
        };
        assert_eq!(source.url, "http://169.254.170.2/v2/credentials/abc");
        assert_eq!(base(&config(&[])), &BaseCredentials::InstanceMetadata);
        assert_eq!(
            base(&config(&[("AWS_EC2_METADATA_DISABLED", "true")])),
            &BaseCredentials::Nothing
        );
    }

    #[test]
    fn the_full_uri_is_refused_unless_https_or_a_known_local_address() {
        for allowed in [
            "https://creds.example.com/v1",
            "http://127.0.0.1:51679/creds",
            "http://127.3.4.5/creds",
            "http://localhost:8080/",
            "http://[::1]:8080/",
            "http://169.254.170.2/v2/credentials/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            let c = config(&[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t"),
            ]);
            let BaseCredentials::Container(source) = base(&c) else {
                panic!("{allowed}: {c:?}")
            };
            assert_eq!(source.url, allowed);
            assert_eq!(source.token.as_deref(), Some("t"));
        }
        for refused in [
            "http://192.0.2.10/creds",
            "http://169.254.170.3/creds",
            "http://10.0.0.1/creds",
            "http://creds.example.com/",
            "http://localhost.example.com/",
            "http://[fd00:ec2::24]/",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            let error = AwsConfig::load(|key| {
                (key == "AWS_CONTAINER_CREDENTIALS_FULL_URI").then(|| refused.to_owned())
            })
            .expect_err(refused)
            .to_string();
            assert!(
                error.starts_with("AWS_CONTAINER_CREDENTIALS_FULL_URI: ")
                    && error.contains("https")
                    && error.contains("169.254.170.23"),
                "{error}"
            );
        }
        // The relative URI wins, as in the SDKs, so a stray full URI is never used.
        let c = config(&[
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/"),
        ]);
        assert!(matches!(base(&c), BaseCredentials::Container(s) if s.url.ends_with("/v2/x")));
    }

    #[test]
    fn reads_static_keys_and_region_from_the_shared_files() {
        let files = Files::new(
            "static",
            "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\
             [ops]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token = t2\n",
            "[profile ops]\nregion = ap-south-1\n",
        );
        let c = files.env(&[("AWS_PROFILE", "ops")]);
        let BaseCredentials::Static(keys) = base(&c) else {
            panic!("{c:?}")
        };
        assert_eq!(keys.access_key_id, "AKIA2");
        assert_eq!(keys.session_token.as_deref(), Some("t2"));
        assert_eq!(c.region.as_deref(), Some("ap-south-1"));
        let c = files.env(&[]);
        assert!(matches!(base(&c), BaseCredentials::Static(k) if k.access_key_id == "AKIA1"));
        // Environment keys come first.
        let c = files.env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        assert!(matches!(base(&c), BaseCredentials::Static(k) if k.access_key_id == "AKIAENV"));
    }

    #[test]
    fn role_profiles_chain_through_source_profiles() {
        let files = Files::new(
            "roles",
            "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = s\n\
             role_arn = arn:aws:iam::1:role/ignored-in-a-source\n",
            "[profile middle]\nrole_arn = arn:aws:iam::1:role/middle\nsource_profile = base\n\
             external_id = ext-1\nrole_session_name = sess\nduration_seconds = 1800\n\
             [profile top]\nrole_arn = arn:aws:iam::2:role/top\nsource_profile = middle\n\
             [profile loop-a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop-b\n\
             [profile loop-b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop-a\n\
             [profile from-ecs]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = EcsContainer\n\
             [profile from-env]\nrole_arn = arn:aws:iam::1:role/v\ncredential_source = Environment\n\
             [profile from-imds]\nrole_arn = arn:aws:iam::1:role/i\ncredential_source = Ec2InstanceMetadata\n\
             [profile lonely]\nrole_arn = arn:aws:iam::1:role/l\n\
             [profile oidc]\nrole_arn = arn:aws:iam::1:role/o\nweb_identity_token_file = /t/token\n",
        );
        let c = files.env(&[("AWS_PROFILE", "top")]);
        let chain = c.credentials.expect("usable");
        assert!(matches!(&chain.base, BaseCredentials::Static(k) if k.access_key_id == "AKIABASE"));
        assert_eq!(
            chain.roles,
            [
                RoleSettings {
                    role_arn: "arn:aws:iam::1:role/middle".into(),
                    external_id: Some("ext-1".into()),
                    session_name: Some("sess".into()),
                    duration_seconds: Some(1800),
                },
                RoleSettings {
                    role_arn: "arn:aws:iam::2:role/top".into(),
                    external_id: None,
                    session_name: None,
                    duration_seconds: None,
                }
            ]
        );
        let error = files
            .env(&[("AWS_PROFILE", "loop-a")])
            .credentials
            .expect_err("loop");
        assert!(error.to_string().contains("loops back"), "{error}");
        let c = files.env(&[
            ("AWS_PROFILE", "from-ecs"),
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/c"),
        ]);
        assert!(matches!(base(&c), BaseCredentials::Container(_)));
        let error = files
            .env(&[("AWS_PROFILE", "from-ecs")])
            .credentials
            .expect_err("no container");
        assert!(error.to_string().contains("EcsContainer"), "{error}");
        let error = files
            .env(&[("AWS_PROFILE", "from-env")])
            .credentials
            .expect_err("no keys");
        assert!(error.to_string().contains("Environment"), "{error}");
        let c = files.env(&[
            ("AWS_PROFILE", "from-env"),
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let chain = c.credentials.expect("usable");
        assert!(matches!(&chain.base, BaseCredentials::Static(k) if k.access_key_id == "AKIAENV"));
        assert_eq!(chain.roles[0].role_arn, "arn:aws:iam::1:role/v");
        let c = files.env(&[("AWS_PROFILE", "from-imds")]);
        let chain = c.credentials.expect("usable");
        assert_eq!(chain.base, BaseCredentials::InstanceMetadata);
        assert_eq!(chain.roles[0].role_arn, "arn:aws:iam::1:role/i");
        let error = files
            .env(&[("AWS_PROFILE", "lonely")])
            .credentials
            .expect_err("no source");
        assert!(error.to_string().contains("source_profile"), "{error}");
        let c = files.env(&[("AWS_PROFILE", "oidc")]);
        assert_eq!(
            base(&c),
            &BaseCredentials::WebIdentity(WebIdentity {
                token_file: "/t/token".into(),
                role_arn: "arn:aws:iam::1:role/o".into(),
                session_name: None,
            })
        );
        // A role flag goes on top of the chain.
        let c = files
            .env(&[("AWS_PROFILE", "top")])
            .with_role(RoleSettings {
                role_arn: "arn:aws:iam::3:role/flag".into(),
                external_id: None,
                session_name: None,
                duration_seconds: None,
            });
        let roles = c.credentials.expect("usable").roles;
        assert_eq!(roles.len(), 3);
        assert_eq!(roles[2].role_arn, "arn:aws:iam::3:role/flag");
    }

    #[test]
    fn web_identity_variables_come_before_the_profile() {
        let files = Files::new(
            "oidc-env",
            "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n",
            "",
        );
        let c = files.env(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/w"),
            ("AWS_ROLE_SESSION_NAME", "pod"),
        ]);
        assert_eq!(
            base(&c),
            &BaseCredentials::WebIdentity(WebIdentity {
                token_file: "/var/run/token".into(),
                role_arn: "arn:aws:iam::1:role/w".into(),
                session_name: Some("pod".into()),
            })
        );
        let error = AwsConfig::load(|key| {
            (key == "AWS_WEB_IDENTITY_TOKEN_FILE").then(|| "/var/run/token".to_owned())
        })
        .expect_err("no role");
        assert!(error.to_string().contains("AWS_ROLE_ARN"), "{error}");
    }

    #[test]
    fn sso_and_process_profiles() {
        let files = Files::new(
            "sso",
            "",
            "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\n\
             sso_role_name = ReadOnly\nregion = eu-west-1\n\
             [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-central-1\n\
             [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n\
             sso_account_id = 4\nsso_role_name = Admin\n\
             [profile broken]\nsso_session = missing\nsso_account_id = 1\nsso_role_name = R\n\
             [profile tool]\ncredential_process = /usr/bin/get-creds --json\n",
        );
        let c = files.env(&[("AWS_PROFILE", "dev")]);
        let BaseCredentials::Sso(sso) = base(&c) else {
            panic!("{c:?}")
        };
        assert_eq!(sso.cache_key, "corp");
        assert_eq!(sso.account_id, "111122223333");
        assert_eq!(sso.role_name, "ReadOnly");
        assert_eq!(
            sso.portal_url,
            "https://portal.sso.eu-central-1.amazonaws.com"
        );
        assert_eq!(sso.cache_dir, files.dir.join(".aws/sso/cache"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        let c = files.env(&[
            ("AWS_PROFILE", "legacy"),
            ("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:9"),
        ]);
        let BaseCredentials::Sso(sso) = base(&c) else {
            panic!("{c:?}")
        };
        assert_eq!(sso.cache_key, "https://old.awsapps.com/start");
        assert_eq!(sso.portal_url, "http://127.0.0.1:9");
        let error = files
            .env(&[("AWS_PROFILE", "broken")])
            .credentials
            .expect_err("no session section");
        assert!(
            error.to_string().contains("[sso-session missing]"),
            "{error}"
        );
        let c = files.env(&[("AWS_PROFILE", "tool")]);
        assert_eq!(
            base(&c),
            &BaseCredentials::Process {
                profile: "tool".into(),
                command: "/usr/bin/get-creds --json".into(),
            }
        );
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
