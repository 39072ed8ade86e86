//! The publisher JWT a Mercure hub asks for, made from `--jwt-key`: HS256
//! over `{"mercure":{"publish":["*"]}}` (the hub's default
//! `publisher_jwt` algorithm; any topic may be published to).
//!
//! A JWT is two base64url JSON documents and an HMAC of them (RFC 7519,
//! 7515); signing is `ring::hmac` and the encoding `base64`, both already
//! in the build through `async-nats`, where a JWT crate would bring key
//! parsers and algorithms nobody uses here. Made once per run.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A compact JWS: `base64url(header).base64url(claims).base64url(HS256)`.
pub(crate) fn mercure_publisher_jwt(key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(br#"{"mercure":{"publish":["*"]}}"#);
    let signing_input = format!("{header}.{claims}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token verifies with the key, as a hub checks it, and its claims
    /// grant publishing to every topic.
    #[test]
    fn signs_and_verifies_with_the_key() {
        let token = mercure_publisher_jwt(b"!ChangeThisMercureHubJWTSecretKey!");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(claims["mercure"]["publish"][0], "*");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            b"!ChangeThisMercureHubJWTSecretKey!",
        );
        let tag = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(ring::hmac::verify(&key, input.as_bytes(), &tag).is_ok());
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another key");
        assert!(ring::hmac::verify(&other, input.as_bytes(), &tag).is_err());
    }
}
