//! SDK errors to the core's [`StoreError`], classified once for every adapter (DynamoDB, S3,
//! SQS, KMS, SES): the Lambda glue retries a transient failure and quarantines a message whose
//! failure is permanent, so the class decides between "try again" and "give up now".
//!
//! Transient: throttling, 5xx, timeouts, network and dispatch failures. Permanent: a request the
//! service refuses for what it carries (a validation error, an item or object too large, a
//! condition that was not expected to fail). An error this module does not know stays
//! transient, as every error was before the classes existed: a misconfiguration (access denied,
//! a missing table) then goes to the dead-letter queue, from where it can be redriven once
//! fixed, instead of quarantining every message it touches.

use std::error::Error;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use mailroom_core::error::{ErrorClass, StoreError};

/// Codes of a service shedding load or failing on its side, whatever the HTTP status says.
const TRANSIENT_CODES: &[&str] = &[
    // DynamoDB
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    // S3
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    // SQS (and KMS: ThrottlingException, above)
    "RequestThrottled",
    // KMS
    "KMSInternalException",
    "DependencyTimeoutException",
    "LimitExceededException",
    // SES (and LimitExceededException, above: a sending rate or quota)
    "TooManyRequestsException",
    // Credentials expire and are refreshed: the next try has new ones.
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
];

/// Codes of a request refused for what it carries: the same request fails the same way again.
const PERMANENT_CODES: &[&str] = &[
    // DynamoDB: item too large, key too long, bad expression; a condition or a transaction the
    // caller did not expect to fail (expected ones are handled before they reach here).
    "ValidationException",
    "ConditionalCheckFailedException",
    "TransactionCanceledException",
    "ItemCollectionSizeLimitExceededException",
    // S3
    "EntityTooLarge",
    "KeyTooLongError",
    "InvalidArgument",
    // SQS
    "InvalidMessageContents",
    "InvalidParameterValue",
    "BatchRequestTooLong",
    // KMS
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "InvalidKeyUsageException",
    // SES: the message or the account is refused as it stands (rejected content, an unverified
    // sender or MAIL FROM domain, a suspended or paused account, a malformed request). Sending
    // again changes nothing until someone acts; the error carries SES's words.
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
];

/// The class of a service's answer, from its error code and HTTP status.
pub fn classify_code(code: Option<&str>, status: u16) -> ErrorClass {
    let code = code.unwrap_or_default();
    if TRANSIENT_CODES.contains(&code) || status >= 500 || status == 429 {
        ErrorClass::Transient
    } else if PERMANENT_CODES.contains(&code) || status == 413 {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    }
}

/// The class of any SDK error.
pub fn classify<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> ErrorClass {
    match e {
        SdkError::ServiceError(s) => classify_code(s.err().code(), s.raw().status().as_u16()),
        // The request could not be built from what it was given.
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        // Timeouts, connection failures, a response cut short.
        _ => ErrorClass::Transient,
    }
}

/// An SDK error as a [`StoreError`] of its class, the cause chain kept.
pub fn sdk_error<E>(context: impl Into<String>, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let class = classify(&e);
    of_class(class, context, e)
}

/// A [`StoreError`] of the given class.
pub fn of_class(
    class: ErrorClass,
    context: impl Into<String>,
    source: impl Into<Box<dyn Error + Send + Sync>>,
) -> StoreError {
    match class {
        ErrorClass::Transient => StoreError::backend(context, source),
        ErrorClass::Permanent => StoreError::permanent(context, source),
    }
}

/// `Ok(None)` when the request's condition failed (the caller expected that it might), the
/// classified error for any other failure.
pub fn unless_condition_failed<T, E>(
    context: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(SdkError::ServiceError(s))
            if s.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(context.to_string(), e)),
    }
}

/// How a cancelled DynamoDB transaction ends, from its cancellation reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A condition failed (or the emulator gave no reasons): the state is not what the caller
    /// assumed; the caller decides what that means.
    Condition,
    /// Another transaction wrote one of the items at the same time: read again and retry.
    Conflict,
    /// A failure of its class: throttling (transient), or a refused item (permanent).
    Failed(ErrorClass),
}

/// Reason codes per the TransactWriteItems documentation; `None` marks an item that did not fail.
pub fn cancelled<S: AsRef<str>>(codes: &[S]) -> Cancelled {
    let mut outcome = Cancelled::Condition;
    for code in codes {
        match code.as_ref() {
            "None" | "ConditionalCheckFailed" => {}
            "TransactionConflict" if outcome == Cancelled::Condition => {
                outcome = Cancelled::Conflict
            }
            "TransactionConflict" => {}
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => {
                outcome = Cancelled::Failed(ErrorClass::Transient)
            }
            // ValidationError, ItemCollectionSizeLimitExceeded, anything else.
            _ => return Cancelled::Failed(ErrorClass::Permanent),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_s3::primitives::SdkBody;

    fn service(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let err = PutItemError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn throttling_server_errors_and_the_network_are_transient() {
        for (code, status) in [
            ("ProvisionedThroughputExceededException", 400),
            ("ThrottlingException", 400),
            ("RequestLimitExceeded", 400),
            ("SlowDown", 503),
            ("InternalServerError", 500),
            ("SomethingNew", 502),
            ("TooManyRequests", 429),
        ] {
            assert_eq!(
                classify(&service(code, status)),
                ErrorClass::Transient,
                "{code}"
            );
        }
        let timeout: SdkError<PutItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), ErrorClass::Transient);
        let network: SdkError<PutItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        assert_eq!(classify(&network), ErrorClass::Transient);
    }

    #[test]
    fn refused_content_is_permanent_and_the_unknown_stays_transient() {
        for code in [
            "ValidationException",
            "ConditionalCheckFailedException",
            "TransactionCanceledException",
            "EntityTooLarge",
            "InvalidCiphertextException",
        ] {
            assert_eq!(
                classify(&service(code, 400)),
                ErrorClass::Permanent,
                "{code}"
            );
        }
        assert_eq!(classify_code(None, 413), ErrorClass::Permanent);
        assert_eq!(
            classify(&service("AccessDenied", 403)),
            ErrorClass::Transient
        );
        let e = sdk_error("put item", service("ValidationException", 400));
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "put item");
        assert!(e.source().is_some(), "the cause is kept");
    }

    #[test]
    fn an_expected_condition_failure_is_no_error() {
        let failed: Result<(), _> = Err(service("ConditionalCheckFailedException", 400));
        assert!(matches!(unless_condition_failed("put", failed), Ok(None)));
        let throttled: Result<(), _> = Err(service("ThrottlingException", 400));
        let e = unless_condition_failed("put", throttled).unwrap_err();
        assert!(e.is_retryable());
    }

    #[test]
    fn cancelled_transactions_by_reason() {
        let none: [&str; 0] = [];
        assert_eq!(cancelled(&none), Cancelled::Condition);
        assert_eq!(
            cancelled(&["None", "ConditionalCheckFailed"]),
            Cancelled::Condition
        );
        assert_eq!(
            cancelled(&["TransactionConflict", "ConditionalCheckFailed"]),
            Cancelled::Conflict
        );
        assert_eq!(
            cancelled(&["TransactionConflict", "ThrottlingError"]),
            Cancelled::Failed(ErrorClass::Transient)
        );
        assert_eq!(
            cancelled(&["ThrottlingError", "TransactionConflict"]),
            Cancelled::Failed(ErrorClass::Transient)
        );
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "ValidationError"]),
            Cancelled::Failed(ErrorClass::Permanent)
        );
        assert_eq!(
            cancelled(&["ThrottlingError", "ItemCollectionSizeLimitExceeded"]),
            Cancelled::Failed(ErrorClass::Permanent)
        );
    }
}
