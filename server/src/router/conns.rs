//! The connections of one id, as the router's map entry holds them: one
//! inline (the common case), or several in a small heap vector.
//!
//! Each is a [`Member`]: where the connection lives, and whether it is
//! still catching up on a replay (an SSE stream replaying a history larger
//! than one step, see `Router::replay_step`). A member catching up counts
//! as a connection of the id but is given no live deliveries: everything
//! published meanwhile is in the history, which its replay reaches; once
//! the replay reaches the id's newest message, under the same lock as
//! publishing, the member goes live, so no message is sent twice or
//! skipped at the switch. 12 bytes a member, as a `ConnRef`.

use super::ConnRef;

/// One connection of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    reactor: u16,
    /// Still replaying: publish counts it but delivers nothing to it.
    pub(super) catching_up: bool,
    key: u32,
    gen: u32,
}

impl Member {
    pub(super) fn new(conn: ConnRef, catching_up: bool) -> Self {
        Self {
            reactor: conn.reactor,
            catching_up,
            key: conn.key,
            gen: conn.gen,
        }
    }

    pub(super) fn conn(self) -> ConnRef {
        ConnRef {
            reactor: self.reactor,
            key: self.key,
            gen: self.gen,
        }
    }
}

/// The members of one id.
#[derive(Debug)]
pub(super) enum Conns {
    None,
    One(Member),
    Many(Vec<Member>),
}

impl Conns {
    pub(super) fn as_slice(&self) -> &[Member] {
        match self {
            Conns::None => &[],
            Conns::One(c) => std::slice::from_ref(c),
            Conns::Many(v) => v,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Conns::None)
    }

    pub(super) fn add(&mut self, member: Member) {
        *self = match std::mem::replace(self, Conns::None) {
            Conns::None => Conns::One(member),
            Conns::One(first) => Conns::Many(vec![first, member]),
            Conns::Many(mut v) => {
                v.push(member);
                Conns::Many(v)
            }
        };
    }

    /// Removes `conn`; true if it was a member.
    pub(super) fn remove(&mut self, conn: ConnRef) -> bool {
        let (removed, next) = match std::mem::replace(self, Conns::None) {
            Conns::None => (false, Conns::None),
            Conns::One(c) if c.conn() == conn => (true, Conns::None),
            one @ Conns::One(_) => (false, one),
            Conns::Many(mut v) => {
                let before = v.len();
                v.retain(|c| c.conn() != conn);
                let removed = v.len() != before;
                match v.len() {
                    0 => (removed, Conns::None),
                    1 => (removed, Conns::One(v[0])),
                    _ => (removed, Conns::Many(v)),
                }
            }
        };
        *self = next;
        removed
    }

    /// `conn` has caught up: it gets live deliveries from now on.
    pub(super) fn go_live(&mut self, conn: ConnRef) {
        let members: &mut [Member] = match self {
            Conns::None => &mut [],
            Conns::One(c) => std::slice::from_mut(c),
            Conns::Many(v) => v,
        };
        if let Some(member) = members.iter_mut().find(|m| m.conn() == conn) {
            member.catching_up = false;
        }
    }
}
