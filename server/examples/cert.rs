//! Bench helper: writes a self-signed certificate for localhost and
//! 127.0.0.1 and its key (PEM), made now with rcgen, so no key is ever
//! committed.
//!
//! `cargo run --release --example cert -- DIR` writes `DIR/cert.pem` and
//! `DIR/key.pem`.

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: cert DIR"));
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).expect("making a certificate");
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("writing cert.pem");
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).expect("writing key.pem");
}
