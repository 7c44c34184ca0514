//! AWS STS for credentials: `AssumeRole`, signed with the credentials below the role, and
//! `AssumeRoleWithWebIdentity`, unsigned because the token is the proof; both Query calls
//! with the client's retries and deadlines, and their XML answers.

use crate::config::{RoleSettings, Service, WebIdentity};
use crate::error::{AwsError, CredentialsError};
use crate::keys::{Credentials, Signer};
use bytes::Bytes;
use quick_xml::Reader;
use quick_xml::events::Event;
use std::future::Future;
use timestamps::now as unix_now;

/// What makes the STS calls: the client, with its endpoints, retries and counts. A trait so
/// that the credentials chain, which the client itself uses, does not depend on the client.
pub(crate) trait QueryCaller: Sync {
    /// Calls a Query protocol `operation` of `service`, signed as `signer` says, and returns
    /// the XML answer.
    fn query_signed(
        &self,
        service: Service,
        operation: &'static str,
        version: &str,
        parameters: &[(String, String)],
        signer: Signer<'_>,
    ) -> impl Future<Output = Result<Bytes, AwsError>> + Send;
}

/// The session name of an assumed role when none is configured.
pub(crate) fn default_session_name() -> String {
    format!("ecs-prom-{}", unix_now() as u64)
}

/// The STS API version.
const VERSION: &str = "2011-06-15";

/// Assumes `role` with `base`.
pub(crate) async fn assume_role(
    client: &impl QueryCaller,
    role: &RoleSettings,
    base: &Credentials,
) -> Result<Credentials, CredentialsError> {
    let operation = "AssumeRole";
    let mut parameters = vec![
        ("RoleArn".to_owned(), role.role_arn.clone()),
        (
            "RoleSessionName".to_owned(),
            role.session_name
                .clone()
                .unwrap_or_else(default_session_name),
        ),
    ];
    if let Some(external_id) = &role.external_id {
        parameters.push(("ExternalId".to_owned(), external_id.clone()));
    }
    if let Some(seconds) = role.duration_seconds {
        parameters.push(("DurationSeconds".to_owned(), seconds.to_string()));
    }
    let failed = |source: AwsError| CredentialsError::Sts {
        operation,
        role_arn: role.role_arn.clone(),
        source: Box::new(source),
    };
    let xml = client
        .query_signed(
            Service::Sts,
            operation,
            VERSION,
            &parameters,
            Signer::With(base),
        )
        .await
        .map_err(failed)?;
    credentials_of(&xml).map_err(|reason| failed(AwsError::Decode { operation, reason }))
}

/// Exchanges the token in `identity`'s file, read afresh, for its role's credentials.
pub(crate) async fn assume_role_with_web_identity(
    client: &impl QueryCaller,
    identity: &WebIdentity,
) -> Result<Credentials, CredentialsError> {
    let operation = "AssumeRoleWithWebIdentity";
    let token = std::fs::read_to_string(&identity.token_file).map_err(|source| {
        CredentialsError::TokenFile {
            what: "the web identity token",
            path: identity.token_file.clone(),
            source,
        }
    })?;
    let parameters = [
        ("RoleArn".to_owned(), identity.role_arn.clone()),
        (
            "RoleSessionName".to_owned(),
            identity
                .session_name
                .clone()
                .unwrap_or_else(default_session_name),
        ),
        ("WebIdentityToken".to_owned(), token.trim().to_owned()),
    ];
    let failed = |source: AwsError| CredentialsError::Sts {
        operation,
        role_arn: identity.role_arn.clone(),
        source: Box::new(source),
    };
    let xml = client
        .query_signed(
            Service::Sts,
            operation,
            VERSION,
            &parameters,
            Signer::Unsigned,
        )
        .await
        .map_err(failed)?;
    credentials_of(&xml).map_err(|reason| failed(AwsError::Decode { operation, reason }))
}

/// The `<Credentials>` of an `AssumeRole` or `AssumeRoleWithWebIdentity` answer.
pub(crate) fn credentials_of(xml: &[u8]) -> Result<Credentials, String> {
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut buffer = Vec::new();
    let (mut key, mut secret, mut token, mut expiration) = (None, None, None, None);
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element)) => path.push(element.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(text)) => {
                let Some((last, parent)) = path.split_last() else {
                    continue;
                };
                if parent.last().map(Vec::as_slice) != Some(b"Credentials") {
                    continue;
                }
                let value = text
                    .decode()
                    .map_err(|e| format!("invalid XML text: {e}"))?
                    .trim()
                    .to_owned();
                match last.as_slice() {
                    b"AccessKeyId" => key = Some(value),
                    b"SecretAccessKey" => secret = Some(value),
                    b"SessionToken" => token = Some(value),
                    b"Expiration" => expiration = Some(value),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => return Err(format!("invalid XML: {error}")),
        }
        buffer.clear();
    }
    let expires_at = match expiration {
        None => None,
        Some(text) => Some(
            timestamps::parse_rfc3339(&text)
                .ok_or_else(|| format!("Expiration {text:?} is not an RFC 3339 time"))?,
        ),
    };
    match (key, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
            expires_at,
        }),
        _ => Err("no Credentials with AccessKeyId and SecretAccessKey".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credentials_of_an_assume_role_answer() {
        // As moto_server and STS send it.
        let xml = br#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIARZPUZDIKDSI4NTU7</AccessKeyId><SecretAccessKey>4rbc/j1PV2Qgw0ZnUYF4UYTDNeOpp</SecretAccessKey><SessionToken>FQoGZXIvYXdz+4=</SessionToken><Expiration>2026-11-30T03:15:28.370802Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA3X42LBCDRDBAKQ2UQ:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>B</RequestId></ResponseMetadata></AssumeRoleResponse>"#;
        let credentials = credentials_of(xml).expect("valid");
        assert_eq!(credentials.access_key_id, "ASIARZPUZDIKDSI4NTU7");
        assert_eq!(
            credentials.secret_access_key,
            "4rbc/j1PV2Qgw0ZnUYF4UYTDNeOpp"
        );
        assert_eq!(
            credentials.session_token.as_deref(),
            Some("FQoGZXIvYXdz+4=")
        );
        let expires_at = credentials.expires_at.expect("an expiry");
        assert!(
            (expires_at - 1_796_008_528.370_802).abs() < 0.001,
            "{expires_at}"
        );
        assert!(credentials_of(b"<AssumeRoleResponse/>").is_err());
        assert!(
            credentials_of(b"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey><Expiration>soon</Expiration></Credentials>")
                .expect_err("bad time")
                .contains("soon")
        );
    }
}
