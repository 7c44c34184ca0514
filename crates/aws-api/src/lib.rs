//! The few AWS API calls ecs-prom makes, without the AWS SDK: SigV4 signing, credentials and
//! region from the standard places (roles, web identity, SSO and `credential_process`
//! included), and JSON 1.1 and Query requests with deadlines,
//! retries with backoff and jitter, rate limits, response size limits and per-outcome counts.
//!
//! ecs-prom calls eleven operations. The SDK crates for them take minutes of CPU to build
//! (numbers in the README); these few hundred lines build in seconds.

pub mod client;
pub mod clock_skew;
pub mod config;
pub mod credentials;
pub mod ec2;
pub mod error;
pub mod keys;
mod process;
pub mod sigv4;
mod sso;
mod sts;
pub mod task_region;
pub mod transport;

pub use client::{ApiRequest, AwsClient, CallCounts, ClientOptions, Outcome};
pub use config::{AwsConfig, ConfigError, RoleSettings, Service, region_of_arn};
pub use ec2::private_addresses;
pub use error::{AwsError, CredentialsError, error_chain};
pub use keys::Credentials;
pub use sigv4::uri_encode;
pub use task_region::{RegionError, region_of_this_task};
