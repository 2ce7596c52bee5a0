//! Request bodies as they come off the wire: plain, or gzip (evbuf's `compression:
//! 'gzip'` option sends `Content-Encoding: gzip`).

use std::borrow::Cow;
use std::io::Read;

use axum::http::StatusCode;
use flate2::read::GzDecoder;

/// The body behind `content_encoding`, at most `limit` bytes once decoded; otherwise the
/// status and message to answer with.
pub fn decode<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, (StatusCode, String)> {
    match content_encoding.map(str::trim) {
        None | Some("" | "identity") => Ok(Cow::Borrowed(body)),
        Some(gzip) if gzip.eq_ignore_ascii_case("gzip") => {
            let mut plain = Vec::new();
            // One byte past the limit tells a body that is too large from one that fits.
            GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("decoding the gzip body: {e}"),
                    )
                })?;
            if plain.len() > limit {
                let msg = format!("the gzip body inflates past the hard limit of {limit} bytes");
                return Err((StatusCode::PAYLOAD_TOO_LARGE, msg));
            }
            Ok(Cow::Owned(plain))
        }
        Some(other) => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}` (gzip or none)"),
        )),
    }
}
