//! The `inet_diag` bytecode filters memlog hands the kernel, so that only
//! the sockets it counts are sent back.
//!
//! A program is a list of conditional jumps (`struct inet_diag_bc_op`):
//! each op tests the socket and jumps `yes` or `no` bytes forward. Running
//! exactly off the end accepts the socket; landing 4 bytes past it rejects
//! it. The kernel checks every `no` target lies on the chain of `yes` jumps
//! from the start, which is why "or" is built as `ss` builds it: a failed
//! condition skips the `JMP` that follows it into the next condition, a
//! passed one falls into that `JMP`, which leaves for the end.
//!
//! Two programs:
//! - [`local_port`]: local port is P (any local address).
//! - [`accepted_on`]: local port is P AND local address is one a listener
//!   on P listens on (a wildcard listener: any address of its family). This
//!   is "sockets the server accepted": a client socket of another process
//!   that happens to use port P from another address is left out.
//!
//! Structs are written out from `linux/inet_diag.h`, and serialised field
//! by field ([`Wire`]) in their `repr(C)` order and native byte order, as
//! the kernel reads them: no byte of a struct is copied blindly, so a
//! struct with padding cannot leak uninitialised memory.

use std::mem::size_of;

/// `INET_DIAG_BC_JMP`, `INET_DIAG_BC_S_GE`, `INET_DIAG_BC_S_LE`,
/// `INET_DIAG_BC_S_COND` from `linux/inet_diag.h`. The `S_GE`+`S_LE` pair is
/// used for "port equals" rather than `S_EQ` because the pair is accepted
/// by every kernel since 2.6, `S_EQ` only since 4.16.
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_S_COND: u8 = 7;

/// Most listener addresses one program names (32 bytes each at most).
const MAX_CONDITIONS: usize = 1024;

/// `struct inet_diag_bc_op`: a conditional jump, `yes`/`no` being byte
/// offsets from this op. An operand op carries a port in `no`.
#[repr(C)]
#[derive(Clone, Copy)]
struct BcOp {
    code: u8,
    yes: u8,
    no: u16,
}

/// `struct inet_diag_hostcond` (the address bytes follow it). `port` -1
/// means any port; `prefix_len` 0 means any address of `family`.
#[repr(C)]
#[derive(Clone, Copy)]
struct HostCond {
    family: u8,
    prefix_len: u8,
    /// Explicit padding (the C struct has 2 implicit bytes here).
    pad: u16,
    port: i32,
}

/// The local address of a listening socket, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenAddr {
    /// AF_INET or AF_INET6.
    pub family: u8,
    /// Network byte order; IPv4 uses the first 4 bytes.
    pub addr: [u8; 16],
}

impl ListenAddr {
    fn addr_len(&self) -> usize {
        if self.family == libc::AF_INET as u8 {
            4
        } else {
            16
        }
    }

    /// 0.0.0.0 or `::`: the listener takes connections on any address.
    pub fn is_wildcard(&self) -> bool {
        self.addr[..self.addr_len()].iter().all(|&b| b == 0)
    }
}

/// A netlink struct as the kernel lays it out: `put` appends its fields in
/// declaration order, native-endian, explicit padding included, so it
/// writes exactly `size_of::<Self>()` bytes of a `repr(C)` struct without
/// implicit padding ([`push`] checks that in debug builds).
pub(crate) trait Wire {
    /// Appends the struct's bytes to `out`.
    fn put(&self, out: &mut Vec<u8>);
}

impl Wire for BcOp {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.code, self.yes]);
        out.extend_from_slice(&self.no.to_ne_bytes());
    }
}

impl Wire for HostCond {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.family, self.prefix_len]);
        out.extend_from_slice(&self.pad.to_ne_bytes());
        out.extend_from_slice(&self.port.to_ne_bytes());
    }
}

/// Appends the bytes of a netlink struct (here and in `sockdiag`).
pub(crate) fn push<T: Wire>(out: &mut Vec<u8>, value: &T) {
    let before = out.len();
    value.put(out);
    debug_assert_eq!(
        out.len() - before,
        size_of::<T>(),
        "a Wire impl skipped a field"
    );
}

/// Keeps sockets whose local port is `port`: `[S_GE][port][S_LE][port]`
/// (16 bytes); each comparison is 8 bytes and on failure jumps past the
/// end + 4 (reject).
pub(crate) fn local_port(port: u16) -> Vec<u8> {
    let operand = BcOp {
        code: 0,
        yes: 0,
        no: port,
    };
    let mut program = Vec::with_capacity(16);
    push(
        &mut program,
        &BcOp {
            code: BC_S_GE,
            yes: 8,
            no: 16 + 4,
        },
    );
    push(&mut program, &operand);
    push(
        &mut program,
        &BcOp {
            code: BC_S_LE,
            yes: 8,
            no: 8 + 4,
        },
    );
    push(&mut program, &operand);
    program
}

/// Keeps sockets whose local port is `port` and whose local address is one
/// of `listeners` (a wildcard: any address of that family). Falls back to
/// [`local_port`] when there is no listener (the server is down, or only
/// its accepted connections remain). Each condition is one `S_COND` op
/// (port and address together); conditions are or-ed.
pub(crate) fn accepted_on(port: u16, listeners: &[ListenAddr]) -> Vec<u8> {
    let mut listeners = listeners.to_vec();
    listeners.sort();
    listeners.dedup(); // SO_REUSEPORT workers share one address
    if listeners.len() > MAX_CONDITIONS {
        // Jump offsets are 16-bit: a program past ~2,300 addresses cannot
        // be encoded. Such a server listens on "everything" in practice.
        return local_port(port);
    }
    let conditions: Vec<Vec<u8>> = listeners
        .iter()
        .map(|l| {
            let addr_len = l.addr_len();
            let len = size_of::<BcOp>() + size_of::<HostCond>() + addr_len;
            let mut op = Vec::with_capacity(len);
            push(
                &mut op,
                &BcOp {
                    code: BC_S_COND,
                    yes: len as u8,
                    no: (len + 4) as u16,
                },
            );
            let prefix_len = if l.is_wildcard() { 0 } else { addr_len * 8 };
            push(
                &mut op,
                &HostCond {
                    family: l.family,
                    prefix_len: prefix_len as u8,
                    pad: 0,
                    port: i32::from(port),
                },
            );
            op.extend_from_slice(&l.addr[..addr_len]);
            op
        })
        .collect();
    let Some((last, earlier)) = conditions.split_last() else {
        return local_port(port);
    };
    // Built from the end: cond, JMP over the rest to the end (accept), rest.
    let mut program = last.clone();
    for cond in earlier.iter().rev() {
        let mut head = cond.clone();
        push(
            &mut head,
            &BcOp {
                code: BC_JMP,
                yes: 4,
                no: (program.len() + 4) as u16,
            },
        );
        head.extend_from_slice(&program);
        program = head;
    }
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_laid_out_as_the_kernel_reads_them() {
        let port = 8000u16.to_ne_bytes();
        let expected = [
            [2, 8, 20, 0],
            [0, 0, port[0], port[1]],
            [3, 8, 12, 0],
            [0, 0, port[0], port[1]],
        ];
        assert_eq!(local_port(8000), expected.concat());
        let one = ListenAddr {
            family: libc::AF_INET as u8,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        let port32 = 8000i32.to_ne_bytes();
        let cond = [
            [7, 16, 20, 0],
            [libc::AF_INET as u8, 32, 0, 0],
            port32,
            [127, 0, 0, 1],
        ];
        assert_eq!(accepted_on(8000, &[one]), cond.concat());
    }

    /// A socket as the kernel's `inet_diag_bc_run` sees it.
    struct Entry {
        family: u8,
        addr: [u8; 16],
        sport: u16,
    }

    /// The kernel's interpreter for the ops used here (net/ipv4/inet_diag.c).
    fn run(program: &[u8], e: &Entry) -> bool {
        let mut at = 0usize;
        let mut len = program.len() as isize;
        while len > 0 {
            let op = &program[at..];
            let (code, yes, no) = (op[0], op[1] as usize, u16::from_ne_bytes([op[2], op[3]]));
            let operand = || u16::from_ne_bytes([op[6], op[7]]);
            let pass = match code {
                BC_JMP => false,
                BC_S_GE => e.sport >= operand(),
                BC_S_LE => e.sport <= operand(),
                BC_S_COND => {
                    let family = op[4];
                    let prefix = op[5] as usize;
                    let port = i32::from_ne_bytes([op[8], op[9], op[10], op[11]]);
                    let addr = &op[12..];
                    (port == -1 || port == i32::from(e.sport))
                        && family == e.family
                        && (prefix == 0 || e.addr[..prefix / 8] == addr[..prefix / 8])
                }
                _ => panic!("unexpected op {code}"),
            };
            let step = if pass { yes } else { no as usize };
            at += step;
            len -= step as isize;
        }
        len == 0
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut addr = [0; 16];
        addr[..4].copy_from_slice(&a);
        addr
    }

    const INET: u8 = libc::AF_INET as u8;
    const INET6: u8 = libc::AF_INET6 as u8;

    #[test]
    fn local_port_keeps_only_that_port() {
        let p = local_port(8000);
        assert_eq!(p.len(), 16);
        let at = |sport| Entry {
            family: INET,
            addr: v4([127, 0, 0, 1]),
            sport,
        };
        assert!(run(&p, &at(8000)));
        assert!(!run(&p, &at(7999)) && !run(&p, &at(8001)));
    }

    #[test]
    fn accepted_on_keeps_listener_addresses_only() {
        let listeners = [
            ListenAddr {
                family: INET,
                addr: v4([127, 0, 0, 1]),
            },
            ListenAddr {
                family: INET,
                addr: v4([127, 0, 0, 1]),
            }, // a second SO_REUSEPORT worker
            ListenAddr {
                family: INET6,
                addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            },
        ];
        let p = accepted_on(8000, &listeners);
        // Two conditions (deduplicated) and one JMP between them.
        assert_eq!(p.len(), (4 + 8 + 4) + 4 + (4 + 8 + 16));
        let entry = |family, addr, sport| Entry {
            family,
            addr,
            sport,
        };
        assert!(run(&p, &entry(INET, v4([127, 0, 0, 1]), 8000)));
        assert!(run(&p, &entry(INET6, listeners[2].addr, 8000)));
        // Another process's client socket on 127.0.0.5:8000.
        assert!(!run(&p, &entry(INET, v4([127, 0, 0, 5]), 8000)));
        assert!(!run(&p, &entry(INET, v4([127, 0, 0, 1]), 8001)));
        assert!(!run(&p, &entry(INET6, v4([127, 0, 0, 1]), 8000)));
    }

    #[test]
    fn a_wildcard_listener_takes_any_address_of_its_family() {
        let any = ListenAddr {
            family: INET,
            addr: [0; 16],
        };
        assert!(any.is_wildcard());
        let p = accepted_on(8000, &[any]);
        let entry = |family, addr| Entry {
            family,
            addr,
            sport: 8000,
        };
        assert!(run(&p, &entry(INET, v4([127, 0, 0, 9]))));
        assert!(!run(&p, &entry(INET6, v4([127, 0, 0, 9]))));
        assert_eq!(accepted_on(8000, &[]), local_port(8000));
        let many: Vec<ListenAddr> = (0..=MAX_CONDITIONS as u32)
            .map(|i| ListenAddr {
                family: INET,
                addr: v4((i + 1).to_be_bytes()),
            })
            .collect();
        assert_eq!(accepted_on(8000, &many), local_port(8000));
    }
}
