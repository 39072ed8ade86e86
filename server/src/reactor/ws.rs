//! What a `/ws` client sends: frames, read whole (`c1m_http::ws`'s bounded
//! decoder) and acted on: a Ping answered with a Pong, a Close answered
//! with a Close and the connection closed once it is out, data frames
//! counted and dropped (a comet server has no use for them), anything that
//! breaks RFC 6455 answered with the Close its error names. And the
//! server's own ends of a `/ws` connection: a Close frame before it goes
//! (shutdown, slow consumer, too much client data).
//!
//! Cost: a client frame cut by a read boundary waits in the record's side
//! allocation (at most [`MAX_CLIENT_FRAME`] + 14 bytes); between frames
//! the one-byte message state rides in the record's phase. A client that
//! sends nothing costs nothing here. Data payload counts toward the same
//! 8 KiB life budget as the stray bytes of `/test` and `/sse`
//! ([`MAX_STRAY`]), past which the connection is closed with 1008.

use std::time::Instant;

use c1m_http::ws::{self, parse_close, read_client_frame, Opcode};

use super::conn::{Phase, MAX_STRAY};
use super::Reactor;
use crate::transport::ws::{close, Ending};
use crate::transport::{Framing, Kind};

/// The largest frame a client may send (its payload); a larger one is
/// refused with 1009 as soon as its header arrives.
pub(super) const MAX_CLIENT_FRAME: usize = 8 * 1024;

// A frame cut by a read fits the input a connection may hold.
const _: () = assert!(MAX_CLIENT_FRAME + c1m_http::ws::MAX_HEADER <= super::read::MAX_INPUT);

impl Reactor {
    /// `self.scratch[..n]` arrived on a `/ws` stream; returns whether to
    /// read on.
    pub(super) fn on_ws_bytes(&mut self, key: usize, n: usize) -> bool {
        let conn = &mut self.conns[key];
        let Phase::Stream(Kind::Ws, Framing::WebSocket(mut state)) = conn.phase else {
            return true;
        };
        let input = &mut self.ws_input;
        input.clear();
        input.extend_from_slice(conn.input());
        input.extend_from_slice(&self.scratch[..n]);
        conn.clear_input();
        self.out.clear();
        let mut at = 0;
        let mut ending = None;
        while ending.is_none() {
            let frame = match read_client_frame(&mut input[at..], &mut state, MAX_CLIENT_FRAME) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    self.local.ws_protocol_closes += 1;
                    ending = Some(Ending::Broken(e));
                    break;
                }
            };
            let payload = &input[at..][frame.payload.clone()];
            at += frame.len;
            match frame.opcode {
                Opcode::Ping => ws::write_frame(&mut self.out, Opcode::Pong, payload, None),
                Opcode::Pong => {}
                Opcode::Close => {
                    ending = Some(match parse_close(payload) {
                        Ok(close) => Ending::Echo(close.code),
                        Err(e) => {
                            self.local.ws_protocol_closes += 1;
                            Ending::Broken(e)
                        }
                    });
                }
                Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                    self.local.ws_frames_in += 1;
                    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
                    conn.stray = conn.stray.saturating_add(len);
                    if conn.stray > MAX_STRAY {
                        ending = Some(Ending::TooMuchData);
                    }
                }
            }
        }
        conn.phase = Phase::Stream(Kind::Ws, Framing::WebSocket(state));
        match ending {
            None => {
                conn.push_input(&self.ws_input[at..]);
                if !self.out.is_empty() {
                    self.send_out(key);
                }
                self.conns.contains(key)
            }
            Some(ending) => {
                if ending == Ending::TooMuchData {
                    self.local.stray_closes += 1;
                }
                self.end_ws(key, ending);
                false
            }
        }
    }

    /// Ends a `/ws` connection with the Close frame `ending` names, after
    /// whatever is in `self.out` (Pongs): it is logged out now, and closed
    /// once the frame is out, or at the next header deadline if its socket
    /// never drains (a slow consumer's may not).
    pub(super) fn end_ws(&mut self, key: usize, ending: Ending) {
        self.logout(key);
        close(&mut self.out, ending);
        let gen = self.conns[key].gen;
        self.conns[key].phase = Phase::Closing;
        self.header_deadlines.push(Instant::now(), key, gen);
        self.send_last(key);
    }
}
