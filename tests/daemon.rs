//! `-o docker-daemon:NAME[:TAG]`: the image streamed into the Docker engine at DOCKER_HOST and run by name; an
//! engine that is not there, or that refuses the image, ends the run in one line naming DOCKER_HOST and quoting the
//! engine, with nothing written.
#![cfg(feature = "engine-tests")]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

use common::{Workspace, assert_refused, docker, run};

#[test]
fn an_image_loaded_into_the_engine_runs_by_name() {
    let ws = Workspace::new();
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    let name = "imgcraft-test/daemon-load:1";
    let out = run(ws.cmd().arg(rootfs).args(["--env", "LOADED=straight", "-o", &format!("docker-daemon:{name}")]));
    assert!(out.contains(&format!("wrote     docker-daemon:{name}")), "{out}");
    assert!(ws.listing().is_empty(), "a load writes no file: {:?}", ws.listing());
    let seen = run(docker().args(["run", "--rm", "--network", "none", name, "/bin/sh", "-c", "echo $LOADED"]));
    assert_eq!(seen, "straight\n");
    run(docker().args(["rmi", name]));
}

#[test]
fn an_engine_that_is_not_running_is_named_before_any_work() {
    let ws = Workspace::new();
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    let host = format!("unix://{}", ws.path("no-engine.sock").display());
    assert_refused(&[ws.dir.path()], &[&format!("DOCKER_HOST={host}"), "is the engine running?"], || {
        let mut c = ws.cmd();
        c.arg(&rootfs).args(["-o", "oci:layout", "-o", "docker-daemon:app:1"]).env("DOCKER_HOST", &host);
        c.output().unwrap()
    });
}

/// An engine of the test's own on a Unix socket: it answers `/_ping`, then answers a load with `answer` (a whole
/// HTTP response), after reading the archive to its end when `read_body`, else at once, closing the connection.
fn fake_engine(ws: &Workspace, answer: String, read_body: bool) -> String {
    let path = ws.path("engine.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 65536];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            if seen.starts_with(b"GET /_ping") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
                continue;
            }
            while read_body && !seen.ends_with(b"\r\n0\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the archive ended without its last chunk");
                seen.extend_from_slice(&buf[..n]);
            }
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    format!("unix://{}", path.display())
}

#[test]
fn the_engines_refusal_is_shown_in_one_line() {
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    // Docker's JSON stream reports a failed load in the body of a 200, with a message of the engine's own words,
    // here with an escape sequence that must not reach the terminal.
    let line =
        r#"{"errorDetail":{"message":"no space left \u001b[31mon device"},"error":"no space"}"#.to_string() + "\n";
    let streamed = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{line}\r\n0\r\n\r\n",
        line.len()
    );
    let message = "{\"message\":\"unexpected EOF in tar\"}\n";
    let refused = format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{message}", message.len());
    for (answer, read_body, words) in [
        (streamed, true, &["it refused the image: no space left \\u{1b}[31mon device"][..]),
        (refused, false, &["it refused the image (400): unexpected EOF in tar"][..]),
    ] {
        let ws = Workspace::new();
        let host = fake_engine(&ws, answer, read_body);
        let mut expected = vec![format!("DOCKER_HOST={host}")];
        expected.extend(words.iter().map(|w| w.to_string()));
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_refused(&[], &expected, || {
            ws.cmd().arg(&rootfs).args(["-o", "docker-daemon:app:1"]).env("DOCKER_HOST", &host).output().unwrap()
        });
    }
}

/// A TCP port on the loopback that forwards every connection to the engine's Unix socket (DOCKER_HOST of the test
/// set-up), as an engine listening on `tcp://` would answer: the real engine, reached over TCP.
fn tcp_to_engine() -> String {
    let engine = std::env::var("DOCKER_HOST").expect("the test set-up exports DOCKER_HOST");
    let socket = engine.strip_prefix("unix://").expect("the test engine listens on a Unix socket").to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let client = client.unwrap();
            let server = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_in, &mut client_out);
                let _ = client_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    format!("tcp://127.0.0.1:{port}")
}

#[test]
fn an_engine_on_tcp_loads_the_image_too() {
    let ws = Workspace::new();
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    let name = "imgcraft-test/daemon-tcp:1";
    let host = tcp_to_engine();
    let mut convert = ws.cmd();
    convert.arg(rootfs).args(["--env", "LOADED=over-tcp", "-o", &format!("docker-daemon:{name}")]);
    run(convert.env("DOCKER_HOST", &host));
    let seen = run(docker().args(["run", "--rm", "--network", "none", name, "/bin/sh", "-c", "echo $LOADED"]));
    assert_eq!(seen, "over-tcp\n");
    run(docker().args(["rmi", name]));
}
