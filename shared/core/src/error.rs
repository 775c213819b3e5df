//! Errors the core's callers branch on, each with its cause chain kept.
//!
//! [`StoreError`] carries an [`ErrorClass`]: the Lambda glue retries only transient failures;
//! an error caused by the content of a message is permanent and quarantines it at once.
//! [`Invalid`] is a refused input value, naming the field at fault.

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a failure is worth another try. Only transient failures (throttling, 5xx, network,
/// timeouts) go back to the queue; a permanent one (a limit of DynamoDB or S3, a validation
/// error: usually caused by the content of a message) would fail the same way every time, so
/// its message is quarantined at once instead of being retried into a dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Permanent,
}

/// A failure of a backing service (DynamoDB, S3, SQS, KMS), classified by [`ErrorClass`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{context}")]
    Backend {
        context: String,
        class: ErrorClass,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// A transient failure: the queue retries it.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context: context.into(),
            class: ErrorClass::Transient,
            source: source.into(),
        }
    }

    /// A failure that retrying cannot fix (a service limit, a refused value).
    pub fn permanent(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context: context.into(),
            class: ErrorClass::Permanent,
            source: source.into(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Backend { class, .. } => *class,
            // Both describe stored state, which a retry does not change.
            StoreError::AlreadyExists(_) | StoreError::NotFound(_) => ErrorClass::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// A service refused a value for what it is (a size or key limit, a malformed value): the
    /// message that carried it is quarantined, not retried. Not for `AlreadyExists` or
    /// `NotFound`, which describe state (and a lost race).
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                class: ErrorClass::Permanent,
                ..
            }
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An error with its causes, `context: cause: cause`, for logs, quarantine reasons and the
/// operator: the context alone rarely says what a service refused.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// An input value that was refused, with the field it came from (a CLI flag, an API field,
/// a configuration variable) when the refusing code knows it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Empty when the caller names the field (a parser of one value: clap adds the flag).
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A refused value whose field the caller knows.
    pub fn value(message: impl Into<String>) -> Self {
        Invalid::new("", message)
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field.as_str() {
            "" => f.write_str(&self.message),
            field => write!(f, "{field}: {}", self.message),
        }
    }
}

impl std::error::Error for Invalid {}
