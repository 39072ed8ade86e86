//! The GRIP origin behind Pushpin: answers every `GET /.../{id}` with
//! `Grip-Hold: stream` and `Grip-Channel: {id}` (the last path segment),
//! so Pushpin holds the stream open and delivers what is published to
//! that channel. One thread accepting and one per proxy connection
//! (Pushpin keeps a few keep-alive connections to it); it lives as long
//! as the process.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Starts the origin on a free loopback port and returns its address.
pub(crate) fn grip_origin() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("grip-origin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        })?;
    Ok(addr)
}

/// Answers each request on one keep-alive connection until it closes.
fn serve(stream: TcpStream) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let channel = line
            .split_whitespace()
            .nth(1)
            .map(|target| target.split('?').next().unwrap_or(target))
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or("")
            .to_owned();
        // The rest of the head; the requests carry no body.
        loop {
            let mut field = String::new();
            if reader.read_line(&mut field).unwrap_or(0) == 0 {
                return;
            }
            if field == "\r\n" || field == "\n" {
                break;
            }
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: stream\r\n\
             Grip-Channel: {channel}\r\nContent-Length: 0\r\n\r\n"
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
