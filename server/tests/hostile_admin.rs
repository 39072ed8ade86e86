//! The admin side given what no transport can carry and credentials in
//! unusual (but valid) spellings.

mod support;

use c1m_server::Config;
use support::*;

#[test]
fn the_admin_refuses_a_carriage_return_no_transport_can_carry() {
    let server = server(config());
    let mut reader = Client::get(server.subscriber_addr(), "/sse/5");
    reader.expect("text/event-stream");
    let (status, body) = admin(&server, "POST", "/send/5", b"a\rb");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CR (0x0D)"), "{body}");
    // In a batch that line is rejected and the rest delivered; a CRLF line
    // end is still a line end.
    let (status, body) = admin(&server, "POST", "/send", b"5\ta\rb\n5\tfine\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""accepted":1,"rejected":1"#), "{body}");
    let text = reader.expect("data: fine\n\n");
    assert!(text.contains("id: 1\ndata: fine\n\n"), "{text:?}");
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let server = server(Config {
        admin_token: Some("s3cret".into()),
        ..config()
    });
    let status = |authorization: &str| {
        let header = format!("Authorization: {authorization}\r\n");
        admin_with(server.admin_addr(), "GET", "/stats", b"", &header).0
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(status(&format!("{scheme} s3cret")), 200, "{scheme}");
    }
    for wrong in [
        "Basic s3cret",
        "Bearer s3cre",
        "Bearers3cret",
        "Bearer",
        "s3cret",
    ] {
        assert_eq!(status(wrong), 401, "{wrong}");
    }
}
