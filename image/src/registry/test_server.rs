//! A hand-rolled HTTP/1.1 server on loopback for the registry client's tests. It is
//! hand-rolled because the tests need what a well-behaved server crate will not do: cut a
//! response short and hang up mid-body (to exercise range resume), and log raw request heads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A one-thread HTTP/1.1 server on loopback. `answer` gets each request head and
/// returns the raw response bytes and how many of them to send before hanging up.
pub fn serve(
    answer: impl Fn(&str) -> (Vec<u8>, Option<usize>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let log = Arc::clone(&log);
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    if head.is_empty() {
                        break;
                    }
                    // A request body (a token POST's form) follows the head, after
                    // a blank line.
                    let length = head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    });
                    if let Some(n) = length.filter(|n| *n > 0) {
                        let mut body = vec![0; n];
                        if reader.read_exact(&mut body).is_err() {
                            break;
                        }
                        head.push_str("\r\n");
                        head.push_str(&String::from_utf8_lossy(&body));
                    }
                    log.lock().unwrap().push(head.clone());
                    let (bytes, cut) = answer(&head);
                    let n = cut.unwrap_or(bytes.len());
                    if stream.write_all(&bytes[..n]).is_err() || cut.is_some() {
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The first request `serve` logged whose head starts with `start`.
pub fn first_request(seen: &Mutex<Vec<String>>, start: &str) -> String {
    seen.lock()
        .unwrap()
        .iter()
        .find(|h| h.starts_with(start))
        .cloned()
        .unwrap_or_else(|| panic!("no request starting {start:?} was made"))
}

/// The bytes of an HTTP/1.1 response with a `Content-Length`.
pub fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
