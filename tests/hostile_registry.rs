//! Registries that fight back, played by small servers of this file on loopback ports: an upload `Location` on a
//! second origin that records every header, endless, stalled and trickling bodies, a server that never answers, and
//! answers full of terminal escape sequences. Each drives the built binary and checks what a user sees: exit 1 and
//! one escaped line naming the registry, in bounded time and disk, and credentials never sent to another origin.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_refused, bin, run, run_within};

/// The longest any server here holds a connection or keeps sending: far past every bound the tests assert.
const HOLD: Duration = Duration::from_secs(60);

/// One request a server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    /// The first [`BODY_KEPT`] bytes of the body.
    body: Vec<u8>,
}

/// How much of a request's body a server keeps: a manifest's whole, a blob's start.
const BODY_KEPT: u64 = 1 << 20;

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How a server answers one request.
enum Answer {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200`, no length, then zeros until the client goes away (or [`HOLD`] passes).
    Endless,
    /// Nothing at all: the request is read, and no answer ever comes.
    Silence,
    /// The status line and headers, `prefix` of the body, then silence.
    Stall {
        headers: Vec<(String, String)>,
        prefix: Vec<u8>,
    },
    /// The answer one byte at a time, one every 100 ms (headers included when `headers_too`).
    Trickle {
        headers_too: bool,
        body: Vec<u8>,
    },
}

fn ok(content_type: &str, body: &[u8]) -> Answer {
    Answer::Full { status: 200, headers: vec![("content-type".into(), content_type.into())], body: body.to_vec() }
}

fn status(code: u16, headers: &[(&str, &str)]) -> Answer {
    Answer::Full {
        status: code,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: Vec::new(),
    }
}

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;

/// An HTTP/1.1 server on a free loopback port; it stops (and its connections end) when dropped.
struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Server {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        Server::listen(seen, move |stream, stop| serve_connection(stream, &*handler, &log, stop))
    }

    /// A server that accepts connections and never says a word.
    fn silent() -> Server {
        Server::listen(Arc::new(Mutex::new(Vec::new())), |_stream, stop| hold(stop))
    }

    fn listen(
        seen: Arc<Mutex<Vec<Seen>>>,
        on_connection: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let on_connection = Arc::new(on_connection);
        let flag = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) && started.elapsed() < HOLD * 3 {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let (flag, on_connection) = (flag.clone(), on_connection.clone());
                        std::thread::spawn(move || on_connection(stream, &flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server { addr, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn hold(stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < HOLD {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves requests on one connection until the client closes it, sends something that is not HTTP (a TLS
/// handshake: the tool tries HTTPS first on loopback), or an answer ends the connection.
fn serve_connection(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>, stop: &AtomicBool) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..1000 {
        let Some(request) = read_request(&mut reader) else { return };
        seen.lock().unwrap().push(request.clone());
        let keep_open = match handler(&request) {
            Answer::Full { status, headers, body } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let head_only = request.method == "HEAD";
                writer.write_all(head.as_bytes()).is_ok() && (head_only || writer.write_all(&body).is_ok())
            }
            Answer::Endless => {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n");
                let zeros = vec![0u8; 64 << 10];
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < HOLD && writer.write_all(&zeros).is_ok() {}
                false
            }
            Answer::Silence => {
                hold(stop);
                false
            }
            Answer::Stall { headers, prefix } => {
                let mut head = "HTTP/1.1 200 OK\r\n".to_string();
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&prefix));
                hold(stop);
                false
            }
            Answer::Trickle { headers_too, body } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len() + 1_000_000);
                let mut all = Vec::new();
                if !headers_too {
                    let _ = writer.write_all(head.as_bytes());
                } else {
                    all.extend_from_slice(head.as_bytes());
                }
                all.extend_from_slice(&body);
                let started = Instant::now();
                for byte in all.iter().cycle() {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > HOLD || writer.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                false
            }
        };
        if !keep_open {
            return;
        }
    }
}

/// Reads one request (headers, and a body by length or in chunks); `None` at the end or for anything but HTTP.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    reader.by_ref().take(8192).read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    if !method.bytes().all(|b| b.is_ascii_uppercase()) || !words.next()?.starts_with("HTTP/1") {
        return None;
    }
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        reader.by_ref().take(65536).read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut seen = Seen { method, path, headers, body: Vec::new() };
    let keep = |reader: &mut BufReader<TcpStream>, length: u64, body: &mut Vec<u8>| -> Option<()> {
        let room = BODY_KEPT.saturating_sub(body.len() as u64).min(length);
        reader.by_ref().take(room).read_to_end(body).ok()?;
        std::io::copy(&mut reader.by_ref().take(length - room), &mut std::io::sink()).ok()?;
        Some(())
    };
    if let Some(length) = seen.header("content-length").and_then(|l| l.parse::<u64>().ok()) {
        keep(reader, length, &mut seen.body)?;
    } else if seen.header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        for _ in 0..100_000 {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = u64::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            keep(reader, size, &mut seen.body)?;
            std::io::copy(&mut reader.by_ref().take(2), &mut std::io::sink()).ok()?;
            if size == 0 {
                break;
            }
        }
    }
    Some(seen)
}

/// A small image written by the tool: its layout, manifest, config and layer, to serve as a registry would.
struct Image {
    _dir: tempfile::TempDir,
    layout: PathBuf,
    rootfs: PathBuf,
    manifest: Vec<u8>,
    manifest_type: String,
    config: (String, Vec<u8>),
    layer: (String, Vec<u8>),
}

impl Image {
    fn build() -> Image {
        Image::build_with(&[])
    }

    /// The image, converted with `extra` options too.
    fn build_with(extra: &[&str]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/hello"), "hello\n").unwrap();
        let layout = dir.path().join("layout");
        let output = format!("oci:{}:1", layout.display());
        run(bin().arg(&rootfs).args(["--arch", "amd64", "-q", "-o", &output]).args(extra));
        let json =
            |path: &Path| -> serde_json::Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
        let blob = |digest: &str| std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
        let index = json(&layout.join("index.json"));
        let top = &index["manifests"][0];
        let manifest_digest = top["digest"].as_str().unwrap().to_string();
        let manifest = blob(&manifest_digest);
        let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let config_digest = parsed["config"]["digest"].as_str().unwrap().to_string();
        let layer_digest = parsed["layers"][0]["digest"].as_str().unwrap().to_string();
        Image {
            manifest_type: top["mediaType"].as_str().unwrap().to_string(),
            config: (config_digest.clone(), blob(&config_digest)),
            layer: (layer_digest.clone(), blob(&layer_digest)),
            manifest,
            layout,
            rootfs,
            _dir: dir,
        }
    }

    /// A registry holding this image as `img:1`, with `special` deciding some answers first.
    fn serve(self: &Arc<Self>, special: impl Fn(&Seen, &Image) -> Option<Answer> + Send + Sync + 'static) -> Server {
        let image = self.clone();
        Server::start(move |request| {
            if let Some(answer) = special(request, &image) {
                return answer;
            }
            let path = request.path.as_str();
            match (request.method.as_str(), path) {
                ("GET", "/v2/") => ok("application/json", b"{}"),
                ("GET", "/v2/img/manifests/1") => ok(&image.manifest_type, &image.manifest),
                ("GET", p) if p == format!("/v2/img/blobs/{}", image.config.0) => {
                    ok("application/octet-stream", &image.config.1)
                }
                ("GET", p) if p == format!("/v2/img/blobs/{}", image.layer.0) => {
                    ok("application/octet-stream", &image.layer.1)
                }
                _ => status(404, &[]),
            }
        })
    }
}

/// The tool with no credentials of the machine's user: auth files are looked up under an empty home.
fn tool(home: &Path) -> Command {
    let mut command = bin();
    command
        .env("HOME", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_RUNTIME_DIR")
        .env("NO_COLOR", "1");
    command
}

/// Runs a command that must be refused within `bound` in one line naming `what` and saying `problem`; returns the
/// line and how long the run took.
fn refused_within(command: &mut Command, bound: Duration, what: &str, problem: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut took = Duration::ZERO;
    let line = assert_refused(&[], &[what, problem], || {
        let output = run_within(command, bound);
        took = started.elapsed();
        output
    });
    if std::env::var_os("SHOW_ERRORS").is_some() {
        eprintln!("SHOWN[{}]: {}", line.len(), &line[..line.len().min(600)]);
    }
    (line, took)
}

/// Bytes of every file under `dir`.
fn disk_use(dir: &Path) -> u64 {
    walk(dir).iter().map(|p| std::fs::symlink_metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// How the second-origin test's registry wants to be authenticated.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Login {
    Basic,
    Bearer,
}

const USER: &str = "ci";
const PASSWORD: &str = "s3cr3t";
const TOKEN: &str = "t0ken-for-the-registry";

/// A registry that checks credentials on every request and sends uploads to `upload_to` (another origin).
fn registry_with_uploads_elsewhere(login: Login, upload_to: String) -> Server {
    let basic = format!("Basic {}", base64(&format!("{USER}:{PASSWORD}")));
    let registry_addr: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let addr = registry_addr.clone();
    let server = Server::start(move |request| {
        let own = addr.lock().unwrap().clone();
        let authorised = match login {
            Login::Basic => request.header("authorization") == Some(basic.as_str()),
            Login::Bearer => request.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()),
        };
        if login == Login::Bearer && request.path.starts_with("/token") {
            return match request.header("authorization") == Some(basic.as_str()) {
                true => ok("application/json", format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes()),
                false => status(401, &[]),
            };
        }
        if !authorised {
            let challenge = match login {
                Login::Basic => r#"Basic realm="hostile""#.to_string(),
                Login::Bearer => format!(r#"Bearer realm="http://{own}/token",service="hostile""#),
            };
            return status(401, &[("www-authenticate", &challenge)]);
        }
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v2/") => ok("application/json", b"{}"),
            ("HEAD", _) => status(404, &[]),
            ("POST", p) if p.starts_with("/v2/app/blobs/uploads/") => {
                status(202, &[("location", &format!("http://{upload_to}/upload/session-1"))])
            }
            ("PUT", p) if p.starts_with("/v2/app/manifests/") => status(201, &[]),
            _ => status(400, &[]),
        }
    });
    *registry_addr.lock().unwrap() = server.addr.clone();
    server
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The second origin: takes uploads (PATCH, then PUT with the digest) and records every request's headers.
fn upload_store() -> Server {
    Server::start(|request| match request.method.as_str() {
        "PATCH" => status(202, &[("location", "/upload/session-1")]),
        "PUT" => status(201, &[]),
        _ => status(404, &[]),
    })
}

#[test]
fn credentials_never_reach_a_second_origin_named_by_an_upload_location() {
    let image = Image::build();
    let home = tempfile::tempdir().unwrap();
    for login in [Login::Basic, Login::Bearer] {
        let store = upload_store();
        let registry = registry_with_uploads_elsewhere(login, store.addr.clone());
        let out = run(tool(home.path()).args([
            "push",
            &format!("oci:{}:1", image.layout.display()),
            &format!("docker://{}/app:1", registry.addr),
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ]));
        assert!(out.contains("pushed"), "{login:?}: {out}");
        let uploads = store.seen();
        assert_eq!(uploads.iter().filter(|r| r.method == "PUT").count(), 2, "{login:?}: config and layer: {uploads:?}");
        for request in &uploads {
            assert_eq!(request.header("authorization"), None, "{login:?}: the second origin got credentials");
        }
        // The registry itself did get them: the test proves the binding, not an anonymous push.
        assert!(registry.seen().iter().any(|r| r.method == "PUT" && r.header("authorization").is_some()));
    }
}

#[test]
fn a_second_origin_asking_for_credentials_gets_none_and_the_push_fails_in_one_line() {
    let image = Image::build();
    let home = tempfile::tempdir().unwrap();
    let store = Server::start(|_| status(401, &[("www-authenticate", r#"Basic realm="give me your password""#)]));
    let registry = registry_with_uploads_elsewhere(Login::Basic, store.addr.clone());
    refused_within(
        tool(home.path()).args([
            "push",
            &format!("oci:{}:1", image.layout.display()),
            &format!("docker://{}/app:1", registry.addr),
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ]),
        Duration::from_secs(60),
        &registry.addr,
        &format!("another host ({}) the registry sent us to answered 401", store.addr),
    );
    assert!(!store.seen().is_empty());
    assert!(store.seen().iter().all(|r| r.header("authorization").is_none()), "{:?}", store.seen());
}

#[test]
fn an_endless_blob_body_is_cut_at_its_descriptor_size_for_every_command() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let endless_layer = image.serve(|request, image| {
        (request.method == "GET" && request.path.ends_with(&image.layer.0)).then_some(Answer::Endless)
    });
    let endless_config = image.serve(|request, image| {
        (request.method == "GET" && request.path.ends_with(&image.config.0)).then_some(Answer::Endless)
    });
    let work = tempfile::tempdir().unwrap();
    let source = |server: &Server| format!("docker://{}/img:1", server.addr);
    let out = work.path().join("out");
    let commands: Vec<(&str, Vec<String>, &Server)> = vec![
        ("inspect", vec!["inspect".into(), source(&endless_layer)], &endless_layer),
        (
            "--base",
            vec![
                image.rootfs.display().to_string(),
                "--arch".into(),
                "amd64".into(),
                "--base".into(),
                source(&endless_layer),
                "-o".into(),
                format!("oci:{}:1", out.display()),
            ],
            &endless_layer,
        ),
        (
            "index",
            vec!["index".into(), source(&endless_layer), "-o".into(), format!("oci:{}:idx", out.display())],
            &endless_layer,
        ),
        (
            "diff",
            vec!["diff".into(), source(&endless_config), format!("oci:{}:1", image.layout.display())],
            &endless_config,
        ),
    ];
    for (name, args, server) in commands {
        let (_, took) = refused_within(
            tool(home.path()).args(&args).args(["--timeout", "5"]),
            Duration::from_secs(60),
            &server.addr,
            "more than the",
        );
        assert!(took < Duration::from_secs(30), "{name} took {took:?}");
        let used = disk_use(work.path());
        assert!(used < 1 << 20, "{name} left {used} bytes under {}", work.path().display());
    }
}

#[test]
fn a_blob_announced_longer_than_its_descriptor_is_refused_before_reading() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let lying = image.serve(|request, image| {
        (request.method == "GET" && request.path.ends_with(&image.layer.0)).then(|| Answer::Stall {
            headers: vec![("content-length".into(), "10737418240".into())],
            prefix: Vec::new(),
        })
    });
    let (_, took) = refused_within(
        tool(home.path()).args(["inspect", &format!("docker://{}/img:1", lying.addr), "--timeout", "20"]),
        Duration::from_secs(60),
        &lying.addr,
        "announces 10737418240 bytes",
    );
    assert!(took < Duration::from_secs(10), "waited for the body: {took:?}");
}

#[test]
fn a_range_answered_whole_is_read_past_and_a_range_answered_wrongly_is_refused() {
    // A zstd:chunked layer: diff reads its table of contents with a Range request.
    let image = Arc::new(Image::build_with(&["--compression", "zstd:chunked"]));
    let home = tempfile::tempdir().unwrap();
    let local = format!("oci:{}:1", image.layout.display());
    let figures = |text: String| {
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        ["download_bytes", "partial_download_bytes", "total_bytes"].map(|key| report[key].clone())
    };
    let expected = figures(run(bin().args(["diff", "--json", &local, &local])));
    // This server ignores the Range header: the whole blob comes, and what precedes the range is read past.
    let whole = image.serve(|_, _| None);
    let remote = format!("docker://{}/img:1", whole.addr);
    assert_eq!(figures(run(tool(home.path()).args(["diff", "--json", &remote, &local]))), expected);
    let ranged: Vec<Seen> = whole.seen().into_iter().filter(|r| r.header("range").is_some()).collect();
    assert!(!ranged.is_empty(), "diff asked for no range");
    // This one answers 206 with a range that starts at 0, not where it was asked to.
    let wrong = image.serve(|request, image| {
        let offset: usize = request.header("range")?.strip_prefix("bytes=")?.trim_end_matches('-').parse().ok()?;
        if !request.path.ends_with(&image.layer.0) {
            return None;
        }
        // As many bytes as asked for, but said to be the blob's first ones.
        let length = image.layer.1.len();
        let body = image.layer.1[offset..].to_vec();
        let range = format!("bytes 0-{}/{length}", body.len() - 1);
        Some(Answer::Full { status: 206, headers: vec![("content-range".into(), range)], body })
    });
    let remote = format!("docker://{}/img:1", wrong.addr);
    refused_within(
        tool(home.path()).args(["diff", &remote, &local, "--timeout", "5"]),
        Duration::from_secs(60),
        &wrong.addr,
        "does not say it holds that range",
    );
}

#[test]
fn a_registry_that_never_answers_times_out_in_one_line() {
    let silent = Server::silent();
    let home = tempfile::tempdir().unwrap();
    let (_, took) = refused_within(
        tool(home.path()).args(["inspect", &format!("docker://{}/img:1", silent.addr), "--timeout", "1"]),
        Duration::from_secs(20),
        &silent.addr,
        "timed out",
    );
    // HTTPS, then plain HTTP (loopback): 2 s expected.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn answers_that_stall_after_their_headers_time_out_in_one_line() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let stalled_manifest = image.serve(|request, _| {
        request.path.contains("/manifests/").then(|| Answer::Stall {
            headers: vec![("content-length".into(), "5000".into())],
            prefix: b"{\"schemaVersion\"".to_vec(),
        })
    });
    let stalled_layer = image.serve(|request, image| {
        request.path.ends_with(&image.layer.0).then(|| Answer::Stall {
            headers: vec![("content-length".into(), image.layer.1.len().to_string())],
            prefix: image.layer.1[..10].to_vec(),
        })
    });
    inspect_times_out(&[&stalled_manifest, &stalled_layer], home.path());
}

/// `inspect` of each server's image with `--timeout 1` fails in one line saying it timed out, in bounded time.
fn inspect_times_out(servers: &[&Server], home: &Path) {
    for server in servers {
        let (_, took) = refused_within(
            tool(home).args(["inspect", &format!("docker://{}/img:1", server.addr), "--timeout", "1"]),
            Duration::from_secs(30),
            &server.addr,
            "timed out",
        );
        // One idle limit, retried once: about 2.5 s.
        assert!(took < Duration::from_secs(12), "took {took:?}");
    }
}

#[test]
fn trickling_answers_time_out_in_one_line() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let trickled_body = image.serve(|request, image| {
        request
            .path
            .contains("/manifests/")
            .then(|| Answer::Trickle { headers_too: false, body: image.manifest.clone() })
    });
    let trickled_headers = image.serve(|request, _| {
        request.path.contains("/manifests/").then(|| Answer::Trickle { headers_too: true, body: Vec::new() })
    });
    inspect_times_out(&[&trickled_body, &trickled_headers], home.path());
}

#[test]
fn registry_text_reaches_the_terminal_escaped_and_cut() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let escapes = "\x1b]0;pwned\x07\x1b[2J\x1b[1;31mred\r\nrootfs2image: all good\u{202e}txt.exe\u{9b}31m";
    let hostile = serde_json::json!({"errors": [{"code": "DENIED\x1b[5m", "message": escapes}]}).to_string();
    // Raw control bytes make this invalid JSON: the tool falls back to quoting the body itself.
    let huge = format!(r#"{{"errors":[{{"code":"DENIED","message":"{}"}}]}}"#, "\x1b[2J\r\n".repeat(1_700_000));
    assert!(huge.len() > 10_000_000);
    for body in [hostile, huge] {
        let body = Arc::new(body.into_bytes());
        let server = image.serve(move |request, _| {
            request.path.contains("/manifests/").then(|| Answer::Full {
                status: 403,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_vec(),
            })
        });
        let (line, _) = refused_within(
            tool(home.path()).args(["inspect", &format!("docker://{}/img:1", server.addr)]),
            Duration::from_secs(60),
            &server.addr,
            "403",
        );
        assert!(line.contains("DENIED"), "{line}");
    }
}

#[test]
fn an_upload_that_stalls_is_given_up_without_starting_over() {
    let image = Image::build();
    let home = tempfile::tempdir().unwrap();
    let registry = Server::start(|request| match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v2/") => ok("application/json", b"{}"),
        ("POST", _) => status(202, &[("location", "/v2/app/blobs/uploads/session")]),
        ("PUT", p) if p.starts_with("/v2/app/blobs/uploads/") => Answer::Silence,
        _ => status(404, &[]),
    });
    let (_, took) = refused_within(
        tool(home.path()).args([
            "push",
            &format!("oci:{}:1", image.layout.display()),
            &format!("docker://{}/app:1", registry.addr),
            "--timeout",
            "1",
        ]),
        Duration::from_secs(30),
        &registry.addr,
        "timed out",
    );
    // Two blobs, each tried twice (one retry after a timeout), and no fresh upload session after that.
    let puts = registry.seen().iter().filter(|r| r.method == "PUT").count();
    let posts = registry.seen().iter().filter(|r| r.method == "POST").count();
    assert!(puts <= 4 && posts <= 2, "{puts} PUTs and {posts} upload sessions for 2 blobs");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_registry_asking_to_retry_in_an_hour_is_not_waited_for() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let busy =
        image.serve(|request, _| request.path.contains("/manifests/").then(|| status(503, &[("retry-after", "3600")])));
    let (_, took) = refused_within(
        tool(home.path()).args([
            "inspect",
            &format!("docker://{}/img:1", busy.addr),
            "--timeout",
            "1",
            "--retries",
            "3",
        ]),
        Duration::from_secs(30),
        &busy.addr,
        "503",
    );
    // Two waits of at most the timeout each.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert_eq!(busy.seen().iter().filter(|r| r.path.contains("/manifests/")).count(), 3);
}

#[test]
fn documents_past_their_size_limits_are_refused() {
    let image = Arc::new(Image::build());
    let home = tempfile::tempdir().unwrap();
    let endless_manifest = image.serve(|request, _| request.path.contains("/manifests/").then_some(Answer::Endless));
    let huge_config = image.serve(|request, image| {
        request.path.contains("/manifests/").then(|| {
            let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
            manifest["config"]["size"] = serde_json::json!(5u64 << 20);
            ok(&image.manifest_type, manifest.to_string().as_bytes())
        })
    });
    for (server, problem) in [(&endless_manifest, "larger than 4194304 bytes"), (&huge_config, "more than the 4194304")]
    {
        let (_, took) = refused_within(
            tool(home.path()).args(["inspect", &format!("docker://{}/img:1", server.addr), "--timeout", "5"]),
            Duration::from_secs(60),
            &server.addr,
            problem,
        );
        assert!(took < Duration::from_secs(30), "took {took:?}");
    }
}

#[test]
fn a_registry_refusing_the_sbom_artifact_gets_no_image_tag_and_the_run_fails_in_one_line() {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), "hello\n").unwrap();
    let sbom = work.path().join("image.spdx.json");
    std::fs::write(&sbom, r#"{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "image"}"#).unwrap();
    // Blobs are taken; a manifest naming a `subject` (an OCI 1.1 artifact) is refused, as registries that know no
    // artifacts do.
    let registry = Server::start(|request| match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v2/") => ok("application/json", b"{}"),
        ("POST", p) if p.starts_with("/v2/app/blobs/uploads/") => {
            status(202, &[("location", "/v2/app/blobs/uploads/session")])
        }
        ("PATCH", _) => status(202, &[("location", "/v2/app/blobs/uploads/session")]),
        ("PUT", p) if p.starts_with("/v2/app/blobs/uploads/") => status(201, &[]),
        ("PUT", p) if p.starts_with("/v2/app/manifests/") => {
            let manifest: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            match manifest.get("subject") {
                Some(_) => Answer::Full {
                    status: 400,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: br#"{"errors":[{"code":"MANIFEST_INVALID","message":"artifacts are not accepted"}]}"#
                        .to_vec(),
                },
                None => status(201, &[]),
            }
        }
        _ => status(404, &[]),
    });
    let home = tempfile::tempdir().unwrap();
    let (line, _) = refused_within(
        tool(home.path())
            .arg(&rootfs)
            .args(["--arch", "amd64", "-q", "--sbom"])
            .arg(&sbom)
            .arg("-o")
            .arg(format!("docker://{}/app:1", registry.addr)),
        Duration::from_secs(60),
        &registry.addr,
        "the application/spdx+json artifact sha256:",
    );
    assert!(line.contains("MANIFEST_INVALID: artifacts are not accepted"), "{line}");
    let seen = registry.seen();
    let manifests: Vec<&Seen> =
        seen.iter().filter(|r| r.method == "PUT" && r.path.starts_with("/v2/app/manifests/")).collect();
    // The artifact was offered (the refusal is the registry's), and the image's tag never put.
    assert!(manifests.iter().any(|r| r.body.windows(9).any(|w| w == b"\"subject\"")), "{seen:?}");
    assert!(manifests.iter().all(|r| r.path != "/v2/app/manifests/1"), "the image was tagged without its SBOM");
}
