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

/// A pre-signed GET: anyone holding `url` may download the object until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedGet {
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl S3Blobs {
    /// A URL that downloads `key` for `expires` (the API hands attachments out this way, so
    /// their bytes never pass through the function), with the response's Content-Type and
    /// Content-Disposition (`attachment`, the file name) fixed by the signature. Signing is
    /// local (no request), and the URL carries the signer's rights: the API's role needs
    /// `s3:GetObject` on the prefix.
    pub async fn presign_get(
        &self,
        key: &str,
        expires: std::time::Duration,
        filename: Option<&str>,
        content_type: &str,
    ) -> StoreResult<PresignedGet> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| StoreError::permanent("presign: expiry", e))?;
        let expires_at = chrono::Utc::now()
            + chrono::Duration::from_std(expires)
                .map_err(|e| StoreError::permanent("presign: expiry", e))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(content_type)
            .response_content_disposition(content_disposition(filename))
            .presigned(config)
            .await
            .map_err(|e| sdk_error(format!("presign s3://{}/{key}", self.bucket), e))?;
        Ok(PresignedGet {
            url: req.uri().to_string(),
            expires_at,
        })
    }
}

/// `attachment; filename="..."` with an ASCII fallback (no quotes, backslashes or controls: a
/// file name comes from the mail's sender) and the exact name as RFC 6266 `filename*`.
pub fn content_disposition(filename: Option<&str>) -> String {
    let Some(name) = filename.filter(|n| !n.trim().is_empty()) else {
        return "attachment".to_string();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_chosen_file_name_cannot_break_out_of_the_header() {
        assert_eq!(content_disposition(None), "attachment");
        assert_eq!(
            content_disposition(Some("a \"b\"\r\nX: y.pdf")),
            "attachment; filename=\"a _b___X: y.pdf\"; \
             filename*=UTF-8''a%20%22b%22%0D%0AX%3A%20y.pdf"
        );
        assert_eq!(
            content_disposition(Some("Grüße.txt")),
            "attachment; filename=\"Gr__e.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"
        );
    }
}
