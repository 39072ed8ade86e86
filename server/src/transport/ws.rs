//! Framing for `/ws/{id}`, the WebSocket transport (RFC 6455, through
//! `c1m_http::ws`): the `101` answer, one frame per message (text when the
//! message is UTF-8, binary when it is not, so any byte can be carried and
//! a browser's `onmessage` gets a string whenever it can), Part 1's
//! heartbeat as a text frame, a Ping as the keep-alive, and the Close
//! frames the server ends a connection with. Server frames are never
//! masked.

use std::io::Write;

use c1m_http::ws::{self, Accept, CloseCode, Opcode};

/// The `101 Switching Protocols` that starts a `/ws` stream.
pub(crate) fn upgrade(out: &mut Vec<u8>, accept: &Accept) {
    ws::write_upgrade_response(out, accept, None);
}

/// One message as one frame: text if it is UTF-8, binary otherwise.
pub(crate) fn message(out: &mut Vec<u8>, body: &[u8]) {
    let opcode = if std::str::from_utf8(body).is_ok() {
        Opcode::Text
    } else {
        Opcode::Binary
    };
    ws::write_frame(out, opcode, body, None);
}

/// Part 1's heartbeat, as a text frame.
pub(crate) fn heartbeat(out: &mut Vec<u8>, scratch: &mut Vec<u8>, n: u32, id: u64) {
    scratch.clear();
    let _ = writeln!(scratch, "Chunk {n} for id {id}");
    ws::write_frame(out, Opcode::Text, scratch, None);
}

/// The keep-alive: an empty Ping, which the client must answer with a
/// Pong (the server reads and drops it).
pub(crate) fn keepalive(out: &mut Vec<u8>) {
    ws::write_frame(out, Opcode::Ping, b"", None);
}

/// Why the server ends a `/ws` connection, as its Close frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The server is shutting down: 1001.
    Shutdown,
    /// Over `--max-pending` unsent bytes: 1008.
    SlowConsumer,
    /// Over 8 KiB of client data over the connection's life: 1008.
    TooMuchData,
    /// The client broke RFC 6455: the decoder's code (1002, 1007, 1009).
    Broken(ws::WsError),
    /// The client closed: its code echoed (RFC 6455 5.5.1), 1000 for none.
    Echo(Option<CloseCode>),
}

/// The Close frame for `ending`.
pub(crate) fn close(out: &mut Vec<u8>, ending: Ending) {
    let (code, reason) = match ending {
        Ending::Shutdown => (CloseCode::GOING_AWAY, "server shutting down"),
        Ending::SlowConsumer => (
            CloseCode::POLICY,
            "slow consumer: over --max-pending unsent",
        ),
        Ending::TooMuchData => (CloseCode::POLICY, "over 8 KiB of client data"),
        Ending::Broken(e) => (e.close_code(), e.reason()),
        Ending::Echo(code) => (code.unwrap_or(CloseCode::NORMAL), ""),
    };
    ws::write_close(out, code, reason, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_http::ws::{Bounds, Event, FrameDecoder};

    /// What a client decoder reads from `out`: (kind or opcode, payload).
    fn read(out: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut decoder = FrameDecoder::new();
        let (mut got, mut data) = (Vec::new(), Vec::new());
        let bounds = Bounds {
            frame: 1 << 20,
            message: 1 << 20,
        };
        decoder
            .decode(out, &bounds, |e| match e {
                Event::Data(b) | Event::Control(_, b) => data.extend_from_slice(b),
                Event::MessageEnd(kind) => {
                    got.push((format!("{kind:?}"), std::mem::take(&mut data)))
                }
                Event::ControlEnd(op) => got.push((format!("{op:?}"), std::mem::take(&mut data))),
            })
            .unwrap();
        got
    }

    #[test]
    fn messages_are_text_when_they_can_be() {
        let mut out = Vec::new();
        message(&mut out, "héllo".as_bytes());
        message(&mut out, b"\xff\x00");
        heartbeat(&mut out, &mut Vec::new(), 3, 9);
        keepalive(&mut out);
        close(&mut out, Ending::Shutdown);
        let got = read(&out);
        assert_eq!(got[0], ("Text".into(), "héllo".as_bytes().to_vec()));
        assert_eq!(got[1], ("Binary".into(), b"\xff\x00".to_vec()));
        assert_eq!(got[2], ("Text".into(), b"Chunk 3 for id 9\n".to_vec()));
        assert_eq!(got[3], ("Ping".into(), vec![]));
        assert_eq!(got[4].0, "Close");
        assert_eq!(&got[4].1[..2], &1001u16.to_be_bytes());
    }
}
