//! Properties of the codec over generated input, through its public surface:
//! any split of a valid chunked body decodes to the same bytes; a valid head
//! gets the same verdict whole or fed in pieces; no input makes anything
//! panic.

use c1m_http::{
    parse_request, parse_response, BodyDecoder, BodyFraming, HeadLimits, HeaderSlots, LAST_CHUNK,
};
use proptest::prelude::*;

const LIMITS: HeadLimits = HeadLimits::new(8 * 1024, 32);

/// A chunked encoding of `chunks`: optional extensions on size lines and a
/// trailer section, as servers send them.
fn encode_chunked(chunks: &[Vec<u8>], extensions: bool, trailer: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
        if extensions {
            out.extend_from_slice(b" ;name=\"quoted;value\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    if trailer.is_empty() {
        out.extend_from_slice(LAST_CHUNK);
    } else {
        out.extend_from_slice(b"0\r\n");
        for line in trailer {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `input` cut at the (sorted, deduplicated) positions `cuts`.
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &input[w[0]..w[1]]).collect()
}

fn a_head_field() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z0-9-]{1,12}", "[ -~]{0,40}").prop_map(|(n, v)| (n, v.trim().to_owned()))
}

proptest! {
    #[test]
    fn any_split_of_a_chunked_body_decodes_the_same(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..12),
        extensions in any::<bool>(),
        trailer in prop::collection::vec("X-[a-z]{1,8}: [ -~]{0,20}", 0..3),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        next in "[ -~]{0,20}",
    ) {
        let mut input = encode_chunked(&chunks, extensions, &trailer);
        let body_len = input.len();
        input.extend_from_slice(next.as_bytes());
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked).unwrap();
        let (mut body, mut counted, mut used) = (Vec::new(), 0, 0);
        for piece in pieces(&input, &cuts) {
            if decoder.is_done() {
                break;
            }
            let got = decoder.decode(piece, |b| body.extend_from_slice(b)).unwrap();
            counted += got.chunks as usize;
            used += got.used;
        }
        prop_assert!(decoder.is_done());
        prop_assert_eq!(body, chunks.concat());
        prop_assert_eq!(counted, chunks.len());
        prop_assert_eq!(used, body_len);
    }

    #[test]
    fn random_bytes_never_panic_a_body_decoder(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        framing in prop_oneof![
            Just(BodyFraming::Chunked),
            Just(BodyFraming::UntilClose),
            Just(BodyFraming::Empty),
            (0u64..500).prop_map(BodyFraming::Length),
        ],
    ) {
        let mut decoder = BodyDecoder::new(framing).unwrap();
        let mut total = 0;
        for piece in pieces(&input, &cuts) {
            match decoder.decode(piece, |b| total += b.len()) {
                Ok(got) => prop_assert!(got.used <= piece.len()),
                Err(_) => break,
            }
        }
        prop_assert!(total <= input.len());
        let _ = decoder.finish();
    }

    #[test]
    fn random_bytes_never_panic_a_head_parser(input in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut slots = HeaderSlots::new();
        if let Ok(Some(head)) = parse_request(&input, &LIMITS, &mut slots) {
            prop_assert!(head.len <= input.len() && head.len <= LIMITS.max_len());
            prop_assert!(head.body != BodyFraming::UntilClose);
        }
        let mut slots = HeaderSlots::new();
        if let Ok(Some(head)) = parse_response(&input, &LIMITS, "GET", &mut slots) {
            prop_assert!(head.len <= input.len() && head.len <= LIMITS.max_len());
        }
    }

    #[test]
    fn a_request_gets_the_same_verdict_whole_or_in_pieces(
        method in prop::sample::select(vec!["GET", "HEAD", "POST"]),
        path in "/[a-z0-9/]{0,20}(\\?[a-z0-9=&]{0,12})?",
        fields in prop::collection::vec(a_head_field(), 0..8),
        length in prop::option::of(0u64..100_000),
        http11 in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut text = format!("{method} {path} HTTP/1.{}\r\nHost: example:80\r\n", u8::from(http11));
        for (name, value) in &fields {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(length) = length {
            text.push_str(&format!("Content-Length: {length}\r\n"));
        }
        text.push_str("\r\n");
        let mut slots = HeaderSlots::new();
        let whole = parse_request(text.as_bytes(), &LIMITS, &mut slots).unwrap().unwrap();
        prop_assert_eq!(whole.len, text.len());
        prop_assert_eq!(whole.method, method);
        prop_assert_eq!(whole.body, length.map_or(BodyFraming::Empty, |n| {
            if n == 0 { BodyFraming::Empty } else { BodyFraming::Length(n) }
        }));
        prop_assert_eq!(whole.headers.len(), fields.len() + 1 + usize::from(length.is_some()));
        // Fed in pieces, as a server re-parses what it has so far.
        let mut seen = Vec::new();
        for piece in pieces(text.as_bytes(), &cuts) {
            seen.extend_from_slice(piece);
            let mut slots = HeaderSlots::new();
            let parsed = parse_request(&seen, &LIMITS, &mut slots).unwrap();
            if seen.len() < text.len() {
                prop_assert!(parsed.is_none(), "complete at {} of {}", seen.len(), text.len());
            } else {
                let parsed = parsed.unwrap();
                prop_assert_eq!((parsed.len, parsed.path, parsed.query), (whole.len, whole.path, whole.query));
                prop_assert_eq!((parsed.keep_alive, parsed.body), (whole.keep_alive, whole.body));
            }
        }
    }

    #[test]
    fn a_response_gets_the_same_verdict_whole_or_in_pieces(
        status in 100u16..600,
        fields in prop::collection::vec(a_head_field(), 0..8),
        chunked in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        body in "[ -~]{0,30}",
    ) {
        let mut text = format!("HTTP/1.1 {status} Whatever\r\n");
        for (name, value) in &fields {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(if chunked { "Transfer-Encoding: chunked\r\n" } else { "Connection: close\r\n" });
        text.push_str("\r\n");
        let head_len = text.len();
        text.push_str(&body);
        let mut slots = HeaderSlots::new();
        let whole = parse_response(text.as_bytes(), &LIMITS, "GET", &mut slots).unwrap().unwrap();
        prop_assert_eq!((whole.status, whole.len), (status, head_len));
        let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
        let expected = match (bodiless, chunked) {
            (true, _) => BodyFraming::Empty,
            (false, true) => BodyFraming::Chunked,
            (false, false) => BodyFraming::UntilClose,
        };
        prop_assert_eq!(whole.body, expected);
        let mut seen = Vec::new();
        for piece in pieces(text.as_bytes(), &cuts) {
            seen.extend_from_slice(piece);
            let mut slots = HeaderSlots::new();
            let parsed = parse_response(&seen, &LIMITS, "GET", &mut slots).unwrap();
            match parsed {
                None => prop_assert!(seen.len() < head_len),
                Some(head) => {
                    prop_assert!(seen.len() >= head_len);
                    prop_assert_eq!((head.status, head.len, head.body), (status, head_len, expected));
                    prop_assert_eq!(head.keep_alive, whole.keep_alive);
                }
            }
        }
    }
}
