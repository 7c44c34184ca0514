//! SSM Parameter Store reads: the namespaces list and Prometheus' configuration.

use aws_api::{AwsClient, AwsError, Service};
use serde::Deserialize;
use serde_json::json;

/// A parameter's value and whether it was stored encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    /// The value (decrypted).
    pub value: String,
    /// Whether it is a SecureString: its value may be a secret.
    pub secure: bool,
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
    #[serde(default, rename = "Type")]
    kind: String,
}

/// The value of an SSM parameter (SecureString parameters decrypted).
pub async fn read_parameter(client: &AwsClient, name: &str) -> Result<ParameterValue, AwsError> {
    let answer: GetParameterAnswer = client
        .json(
            Service::Ssm,
            "GetParameter",
            &json!({ "Name": name, "WithDecryption": true }),
        )
        .await?;
    Ok(ParameterValue {
        secure: answer.parameter.kind == "SecureString",
        value: answer.parameter.value,
    })
}
