//! S3 adapter: raw messages, large bodies, attachments, quarantine copies.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::ports::BlobStore;

use crate::errors::sdk_error;

#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: Client, bucket: &str) -> Self {
        S3Blobs {
            client,
            bucket: bucket.to_string(),
        }
    }

    /// Keys under `prefix` (tests and operator tools).
    pub async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(format!("list s3://{}/{prefix}", self.bucket), e))?;
            out.extend(
                resp.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            token = resp.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error(format!("put s3://{}/{key}", self.bucket), e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let resp = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(r) => r,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(sdk_error(format!("get s3://{}/{key}", self.bucket), e)),
        };
        // A body cut short is a network failure: transient.
        let bytes = resp
            .body
            .collect()
            .await
            .map_err(|e| StoreError::backend(format!("read s3://{}/{key}", self.bucket), e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}
