//! A Docker engine as its API is reached (`DOCKER_HOST`: `unix:///var/run/docker.sock` by default, or
//! `tcp://HOST:PORT` without TLS), spoken to in plain HTTP/1.1 over the socket: enough for `GET /_ping` and a
//! streamed `POST /images/load`, with every answer read within a bound.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::error::{Error, Result};

/// Where the engine listens when `DOCKER_HOST` is unset: the Docker default.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The most of an engine's answer read: its JSON stream for one load is a few lines.
const MAX_ANSWER: u64 = 1 << 20;

/// How long the engine may stay silent: a load of a large image is answered only once it is stored.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// The engine's address, as `DOCKER_HOST` gives it.
#[derive(Clone, Debug)]
pub struct Engine {
    /// `DOCKER_HOST` as written, for messages.
    pub host: String,
    address: Address,
}

#[derive(Clone, Debug)]
enum Address {
    Unix(String),
    Tcp(String),
}

/// A connection to the engine: a Unix or TCP socket.
pub struct Connection {
    stream: Box<dyn Socket>,
}

trait Socket: Read + Send {
    fn fd(&self) -> RawFd;
}

impl Socket for UnixStream {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl Socket for TcpStream {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl Write for Connection {
    /// Writes with `MSG_NOSIGNAL`: an engine that closes the connection early (it refused the load) must give an
    /// error to report, not a SIGPIPE that ends the run silently.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: a socket we hold and a buffer of `buf.len()` bytes.
        let n = unsafe { libc::send(self.stream.fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Engine {
    /// The engine `DOCKER_HOST` names (the default when unset).
    pub fn from_env() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.into());
        let address = if let Some(path) = host.strip_prefix("unix://") {
            Address::Unix(path.to_string())
        } else if let Some(rest) = host.strip_prefix("tcp://") {
            Address::Tcp(rest.trim_end_matches('/').to_string())
        } else {
            return Err(Error::Invalid(format!(
                "DOCKER_HOST={host}: only unix:// and tcp:// engines can be reached (ssh:// is not supported)"
            )));
        };
        Ok(Engine { host, address })
    }

    /// An error about reaching this engine, naming DOCKER_HOST.
    pub fn fail(&self, problem: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("Docker engine at DOCKER_HOST={}: {problem}", self.host))
    }

    pub fn connect(&self) -> Result<Connection> {
        let unreachable = |e: io::Error| self.fail(format!("cannot connect ({e}): is the engine running?"));
        let stream: Box<dyn Socket> = match &self.address {
            Address::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(unreachable)?;
                stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(unreachable)?;
                Box::new(stream)
            }
            Address::Tcp(address) => {
                use std::net::ToSocketAddrs;
                let target = address.to_socket_addrs().map_err(unreachable)?.next().ok_or_else(|| {
                    unreachable(io::Error::new(io::ErrorKind::NotFound, "the host name has no address"))
                })?;
                let stream = TcpStream::connect_timeout(&target, Duration::from_secs(10)).map_err(unreachable)?;
                stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(unreachable)?;
                Box::new(stream)
            }
        };
        Ok(Connection { stream })
    }

    /// `GET /_ping`: whether an engine answers at all, before any work is done for it.
    pub fn ping(&self) -> Result<()> {
        let mut connection = self.connect()?;
        connection
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: rootfs2image\r\nConnection: close\r\n\r\n")
            .map_err(|e| self.fail(format!("cannot send a request: {e}")))?;
        let (status, body) = read_answer(connection).map_err(|e| self.fail(format!("no answer: {e}")))?;
        if status != 200 {
            return Err(self.fail(format!("it answers /_ping with {status}: {}", shown(&body))));
        }
        Ok(())
    }
}

/// The engine's text in an error: escaped and cut.
pub fn shown(body: &[u8]) -> String {
    crate::error::display_text(String::from_utf8_lossy(body).trim(), crate::error::MAX_QUOTED_TEXT)
}

/// A request body sent in HTTP/1.1 chunks, its length unknown until it ends: the archive is streamed as written.
pub struct Chunked<W: Write> {
    out: W,
}

impl<W: Write> Chunked<W> {
    pub fn new(out: W) -> Self {
        Chunked { out }
    }

    /// Ends the body (the zero-length chunk) and gives the connection back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"0\r\n\r\n")?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        write!(self.out, "{:x}\r\n", buf.len())?;
        self.out.write_all(buf)?;
        self.out.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads an HTTP/1.1 answer: its status and its body (chunked, of a length, or up to the end), at most
/// [`MAX_ANSWER`] bytes of it.
pub fn read_answer(connection: impl Read) -> io::Result<(u16, Vec<u8>)> {
    let mut reader = BufReader::new(connection.take(MAX_ANSWER + 64 * 1024));
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| bad("not an HTTP answer"))?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("the answer ends in its headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name == "content-length" {
                length = value.parse::<u64>().ok();
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("a malformed chunk size"))?;
            if size == 0 || body.len() as u64 + size > MAX_ANSWER {
                break;
            }
            (&mut reader).take(size).read_to_end(&mut body)?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else {
        (&mut reader).take(length.unwrap_or(MAX_ANSWER).min(MAX_ANSWER)).read_to_end(&mut body)?;
    }
    Ok((status, body))
}
