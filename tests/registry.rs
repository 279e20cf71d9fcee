//! Pushing to real registry servers (Debian's docker-registry, the reference implementation) started here on
//! loopback ports: plain HTTP, htpasswd basic auth, TLS with a CA made at test time, and a faulty proxy that drops a
//! connection mid-upload. Results are checked with skopeo, Docker, and the registry's own access log.
#![cfg(feature = "engine-tests")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{RegistryConfig, TestRegistry, assert_refused, bin, docker, fixtures, run};

fn push_json(args: &[&str]) -> serde_json::Value {
    let out = run(bin().arg(fixtures().join("rootfs-amd64.tar.zst")).args(args).arg("--json"));
    serde_json::from_str(&out).unwrap()
}

fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).args(extra).arg(reference));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn a_push_lands_whole_and_a_second_push_uploads_nothing() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let target = format!("docker://{}/imgcraft/app:1.0", registry.addr);
    let first = push_json(&["-o", &target]);
    let push = &first["pushes"][0];
    assert_eq!(push["uploaded"].as_array().unwrap().len(), 2, "{push}");
    assert_eq!(push["manifest_digest"], first["manifest_digest"]);
    assert_eq!(skopeo_digest(&target, &[]), first["manifest_digest"].as_str().unwrap());
    let uploads_before = registry.requests("PUT", "/blobs/uploads/");

    let second = push_json(&["-o", &target]);
    assert_eq!(second["pushes"][0]["uploaded"].as_array().unwrap().len(), 0);
    assert_eq!(second["pushes"][0]["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), uploads_before, "{}", registry.log());
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), 2, "{}", registry.log());
}

#[test]
fn docker_pulls_and_runs_what_was_pushed() {
    // Docker treats 127.0.0.0/8 registries as insecure and speaks plain HTTP to them.
    let registry = TestRegistry::start(RegistryConfig::default());
    let name = format!("{}/imgcraft/run:1", registry.addr);
    push_json(&["-o", &format!("docker://{name}")]);
    run(docker().args(["pull", "-q", &name]));
    let out = run(docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "/bin/sh",
        "-c",
        "cat /usr/share/hl/a; uname -m",
    ]));
    assert_eq!(out, "hardlinked\nx86_64\n");
    run(docker().args(["rmi", &name]));
}

#[test]
fn large_blobs_go_up_in_chunks_and_the_push_subcommand_pushes_a_layout() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let work = tempfile::tempdir().unwrap();
    // 20 MiB of incompressible data: a layer of several 8 MiB chunks.
    let rootfs = work.path().join("rootfs");
    run(Command::new("cp").arg("-a").arg(fixtures().join("rootfs-amd64")).arg(&rootfs));
    let mut big = std::fs::File::create(rootfs.join("big.bin")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..20 {
        for b in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        big.write_all(&buf).unwrap();
    }
    drop(big);
    let layout = work.path().join("layout");
    run(bin().arg(&rootfs).args(["-q", "-o"]).arg(format!("oci:{}:v1", layout.display())));
    let target = format!("docker://{}/imgcraft/big:v1", registry.addr);
    let out = run(bin()
        .args(["push", "--json", "--chunk-size", "8"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&target));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["bytes_sent"].as_u64().unwrap() > 20 << 20, "{report}");
    assert!(registry.requests("PATCH", "/blobs/uploads/") >= 3, "{}", registry.log());
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(skopeo_digest(&target, &[]), index["manifests"][0]["digest"].as_str().unwrap());
}

#[test]
fn basic_auth_takes_credentials_from_flags_stdin_and_auth_files_and_refuses_wrong_ones() {
    let registry = TestRegistry::start(RegistryConfig {
        htpasswd: Some(("ci".into(), "s3cret-pw".into())),
        ..RegistryConfig::default()
    });
    let target = format!("docker://{}/team/app:1", registry.addr);
    push_json(&["-o", &target, "--creds", "ci:s3cret-pw"]);
    assert!(!skopeo_digest(&target, &["--creds", "ci:s3cret-pw"]).is_empty());

    let mut child = bin()
        .arg(fixtures().join("rootfs-amd64.tar"))
        .args(["-q", "--creds-stdin", "-o", &target])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ci:s3cret-pw\n").unwrap();
    assert!(child.wait().unwrap().success());

    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.json");
    std::fs::write(&auth_file, format!(r#"{{"auths":{{"{}":{{"auth":"Y2k6czNjcmV0LXB3"}}}}}}"#, registry.addr))
        .unwrap();
    run(bin()
        .arg(fixtures().join("rootfs-amd64.tar"))
        .args(["-q", "-o", &target])
        .env("REGISTRY_AUTH_FILE", &auth_file));

    let message = assert_refused(&[], &[&registry.addr, "team/app", "wrong credentials"], || {
        let wrong = ["-o", &target, "--creds", "ci:not-the-password"];
        bin().arg(fixtures().join("rootfs-amd64.tar")).args(wrong).output().unwrap()
    });
    assert!(!message.contains("not-the-password"), "the secret leaked: {message}");

    assert_refused(&[], &["requires a login"], || {
        bin()
            .arg(fixtures().join("rootfs-amd64.tar"))
            .args(["-o", &target])
            .env("HOME", auth_dir.path())
            .output()
            .unwrap()
    });
}

#[test]
fn tls_registries_are_verified_against_the_system_store_and_cert_dir() {
    let registry = TestRegistry::start(RegistryConfig { tls: true, ..RegistryConfig::default() });
    let target = format!("docker://{}/secure/app:1", registry.addr);
    assert_refused(&[], &["cannot reach the registry", "--cert-dir"], || {
        bin().arg(fixtures().join("rootfs-amd64.tar")).args(["-o", &target]).output().unwrap()
    });
    let pushed = push_json(&["-o", &target, "--cert-dir", registry.ca().to_str().unwrap()]);
    let ca = registry.ca().join("ca.crt");
    let digest = skopeo_digest(&target, &["--cert-dir", registry.ca().to_str().unwrap()]);
    assert_eq!(digest, pushed["manifest_digest"].as_str().unwrap());
    assert!(ca.is_file());
    // --tls-verify=false accepts the unknown CA, as skopeo's flag does.
    push_json(&["-o", &target, "--tls-verify=false"]);
}

#[test]
fn cross_repository_mounts_send_no_data() {
    let registry = TestRegistry::start(RegistryConfig::default());
    push_json(&["-o", &format!("docker://{}/base/app:1", registry.addr)]);
    let mounted = push_json(&["-o", &format!("docker://{}/other/app:1", registry.addr), "--mount-from", "base/app"]);
    let push = &mounted["pushes"][0];
    assert_eq!(push["mounted"].as_array().unwrap().len(), 2, "{push}");
    assert_eq!(push["bytes_sent"], 0);
    assert_eq!(registry.requests("POST", "mount="), 2, "{}", registry.log());
}

/// How the faulty proxy misbehaves, once.
#[derive(Clone, Copy)]
enum Fault {
    /// Cut the connection after this many request bytes in all.
    CutAfter(u64),
    /// Answer the first `PUT` (an upload's closing request) with 503 and `Retry-After: 1` instead of forwarding it.
    Unavailable,
}

/// Forwards loopback connections to `upstream`, misbehaving once as `fault` says.
fn faulty_proxy(upstream: String, fault: Fault) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let tripped = Arc::new(AtomicBool::new(false));
    let tripped_out = Arc::clone(&tripped);
    std::thread::spawn(move || {
        for client in listener.incoming().take(200) {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else { return };
            let (sent, tripped) = (Arc::clone(&sent), Arc::clone(&tripped));
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    let trip = match fault {
                        Fault::CutAfter(limit) => total > limit,
                        Fault::Unavailable => buf[..n].starts_with(b"PUT "),
                    };
                    if trip && !tripped.swap(true, Ordering::SeqCst) {
                        if let Fault::Unavailable = fault {
                            // Like a real server: read the whole request (its body too), then answer.
                            drain_request_body(&mut c_read, &buf[..n]);
                            let reply = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                            let mut answer = c_read.try_clone().unwrap();
                            let _ = answer.write_all(reply.as_bytes());
                        }
                        let _ = c_read.shutdown(Shutdown::Both);
                        let _ = s_write.shutdown(Shutdown::Both);
                        return;
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, tripped_out)
}

/// Reads the rest of a request whose first `received` bytes (headers included) were already read.
fn drain_request_body(stream: &mut TcpStream, received: &[u8]) {
    let mut head = received.to_vec();
    let mut buf = [0u8; 16384];
    let header_end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let headers = String::from_utf8_lossy(&head[..header_end]).to_ascii_lowercase();
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut left = length.saturating_sub(head.len() - header_end);
    while left > 0 {
        match stream.read(&mut buf[..left.min(16384)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n,
        }
    }
}

#[test]
fn a_connection_dropped_mid_upload_is_retried_and_the_push_succeeds() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let (proxy, tripped) = faulty_proxy(registry.addr.clone(), Fault::CutAfter(2 << 20));
    let target = format!("docker://{proxy}/flaky/app:1");
    let pushed = push_json(&["-o", &target]);
    assert!(tripped.load(Ordering::SeqCst), "the proxy never cut a connection");
    let direct = format!("docker://{}/flaky/app:1", registry.addr);
    assert_eq!(skopeo_digest(&direct, &[]), pushed["manifest_digest"].as_str().unwrap());
    // A full copy reads every blob back, so a blob corrupted by the cut would fail here.
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&direct)
        .arg(format!("oci:{}:x", copy.path().join("layout").display())));
}

/// A token service as the distribution spec describes it (docs/spec/auth/token.md): checks HTTP basic credentials
/// and answers with a real ES256-signed JWT granting the requested scopes, push only to users allowed to push.
struct TokenService {
    addr: String,
    cert_pem: PathBuf,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TokenService {
    /// `users`: (user, password, may_push).
    fn start(users: Vec<(&'static str, &'static str, bool)>) -> TokenService {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir.path()).args(args));
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"]);
        openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.pk8"]);
        openssl(&[
            "req",
            "-x509",
            "-key",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=imgcraft token signer",
        ]);
        openssl(&["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
        let pkcs8 = std::fs::read(dir.path().join("key.pk8")).unwrap();
        let cert_der = std::fs::read(dir.path().join("cert.der")).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key =
            ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(500) {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(target.clone());
                let user = request
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Authorization: Basic ").or_else(|| l.strip_prefix("authorization: Basic "))
                    })
                    .and_then(|b| base64_decode(b.trim()))
                    .and_then(|pair| users.iter().find(|(u, p, _)| pair == format!("{u}:{p}")).copied());
                let response = match user {
                    None => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    Some((name, _, may_push)) => {
                        let token = sign_token(&key, &rng, &cert_der, name, &scopes(&target), may_push);
                        let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        TokenService { addr, cert_pem: dir.path().join("cert.pem"), requests, _dir: dir }
    }
}

/// The `scope` query parameters of a token request, percent-decoded.
fn scopes(target: &str) -> Vec<String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(|v| {
            let mut out = Vec::new();
            let bytes = v.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
        .collect()
}

fn base64_decode(text: &str) -> Option<String> {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).ok()?).ok()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWS with the signing certificate in `x5c`, as docker/distribution's token verifier expects.
fn sign_token(
    key: &ring::signature::EcdsaKeyPair,
    rng: &ring::rand::SystemRandom,
    cert_der: &[u8],
    user: &str,
    scopes: &[String],
    may_push: bool,
) -> String {
    use base64::Engine as _;
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)],
    });
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let granted: Vec<&str> =
                actions.split(',').filter(|a| *a == "pull" || (*a == "push" && may_push)).collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": "imgcraft-test-issuer",
        "sub": user,
        "aud": "imgcraft-test-registry",
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{user}-{}", scopes.len()),
        "access": access,
    });
    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = key.sign(rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64url(signature.as_ref()))
}

#[test]
fn token_authentication_gets_scoped_tokens_and_refuses_wrong_or_read_only_users() {
    let tokens = TokenService::start(vec![("ci", "t0ken-pw", true), ("reader", "r", false)]);
    let registry = TestRegistry::start(RegistryConfig {
        token: Some((tokens.addr.clone(), tokens.cert_pem.clone())),
        ..RegistryConfig::default()
    });
    let target = format!("docker://{}/tok/app:1", registry.addr);
    let pushed = push_json(&["-o", &target, "--creds", "ci:t0ken-pw"]);
    assert_eq!(pushed["pushes"][0]["uploaded"].as_array().unwrap().len(), 2);
    assert_eq!(skopeo_digest(&target, &["--creds", "ci:t0ken-pw"]), pushed["manifest_digest"].as_str().unwrap());
    assert!(
        tokens.requests.lock().unwrap().iter().any(|r| scopes(r).contains(&"repository:tok/app:pull,push".to_string())),
        "{:?}",
        tokens.requests.lock().unwrap()
    );

    // A mount asks for pull on the source repository in the same token.
    let mounted = push_json(&[
        "-o",
        &format!("docker://{}/tok/copy:1", registry.addr),
        "--creds",
        "ci:t0ken-pw",
        "--mount-from",
        "tok/app",
    ]);
    assert_eq!(mounted["pushes"][0]["mounted"].as_array().unwrap().len(), 2, "{mounted}");
    assert!(tokens.requests.lock().unwrap().iter().any(|r| scopes(r).contains(&"repository:tok/app:pull".to_string())));

    let message = assert_refused(&[], &["token service refused user `ci`"], || {
        bin().arg(fixtures().join("rootfs-amd64.tar")).args(["-o", &target, "--creds", "ci:nope"]).output().unwrap()
    });
    assert!(!message.contains("nope"), "{message}");

    assert_refused(&[], &["no push right", "tok/other"], || {
        let other = format!("docker://{}/tok/other:1", registry.addr);
        bin().arg(fixtures().join("rootfs-amd64.tar")).args(["-o", &other, "--creds", "reader:r"]).output().unwrap()
    });
}

#[test]
fn a_two_platform_index_is_pushed_and_docker_runs_each_platform() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let work = tempfile::tempdir().unwrap();
    let layout = |name: &str| format!("oci:{}:1", work.path().join(name).display());
    run(bin().arg(fixtures().join("rootfs-amd64.tar.zst")).args(["-q", "-o", &layout("amd64")]));
    run(bin().arg(fixtures().join("rootfs-arm64.tar.zst")).args(["-q", "-o", &layout("arm64")]));
    let name = format!("{}/imgcraft/multi:1", registry.addr);
    let out = run(bin()
        .args(["index", "--json", &layout("amd64"), &layout("arm64"), "-o", &layout("both")])
        .arg("-o")
        .arg(format!("docker://{name}")));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let platforms: Vec<String> = report["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{name}")));
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    // skopeo picks the image for the platform asked for from the layout copy too.
    let arm = run(Command::new("skopeo").args(["inspect", "--override-arch", "arm64"]).arg(layout("both")));
    assert!(arm.contains("\"Architecture\": \"arm64\""), "{arm}");
    for (platform, machine) in [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")] {
        run(docker().args(["pull", "-q", "--platform", platform, &name]));
        let out =
            run(docker().args(["run", "--rm", "--network", "none", "--platform", platform, &name, "uname", "-m"]));
        assert_eq!(out.trim(), machine, "{platform}");
        run(docker().args(["rmi", &name]));
    }
}

#[test]
fn registry_sources_are_mounted_into_an_index_on_the_same_registry_and_streamed_elsewhere() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let amd = format!("docker://{}/src/amd64:1", registry.addr);
    let arm = format!("docker://{}/src/arm64:1", registry.addr);
    run(bin().arg(fixtures().join("rootfs-amd64.tar.zst")).args(["-q", "-o", &amd]));
    run(bin().arg(fixtures().join("rootfs-arm64.tar.zst")).args(["-q", "-o", &arm]));
    let inspected = run(bin().args(["inspect", "--json", &arm]));
    assert!(inspected.contains("\"architecture\": \"arm64\""), "{inspected}");

    let target = format!("docker://{}/dst/multi:1", registry.addr);
    let out = run(bin().args(["index", "--json", &amd, &arm, "-o", &target]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let push = &report["pushes"][0];
    assert_eq!((push["mounted"].as_array().unwrap().len(), push["bytes_sent"].as_u64()), (4, Some(0)), "{push}");
    assert_eq!(registry.requests("GET", "/v2/src/amd64/blobs/"), 1, "only the config is read: {}", registry.log());

    let work = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:1", work.path().join("multi").display());
    run(bin().args(["index", &amd, &arm, "-o", &layout]));
    let arm_only = run(Command::new("skopeo").args(["inspect", "--override-arch", "arm64"]).arg(&layout));
    assert!(arm_only.contains("\"Architecture\": \"arm64\""), "{arm_only}");
    let copied = run(bin().args(["push", "--json", &amd, &format!("docker://{}/dst/copy:1", registry.addr)]));
    assert!(copied.contains("\"bytes_sent\": 0"), "{copied}");
}

#[test]
fn a_503_with_retry_after_is_waited_out_and_retried() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let (proxy, tripped) = faulty_proxy(registry.addr.clone(), Fault::Unavailable);
    let started = Instant::now();
    let pushed = push_json(&["-o", &format!("docker://{proxy}/busy/app:1")]);
    assert!(tripped.load(Ordering::SeqCst), "the proxy never answered 503");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not honoured");
    let direct = format!("docker://{}/busy/app:1", registry.addr);
    assert_eq!(skopeo_digest(&direct, &[]), pushed["manifest_digest"].as_str().unwrap());
}

#[test]
fn copy_pulls_an_image_pinned_by_digest_into_an_archive_unchanged_and_refuses_a_wrong_digest() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let tagged = format!("docker://{}/base/app:1", registry.addr);
    let pushed = push_json(&["-o", &tagged]);
    let digest = pushed["manifest_digest"].as_str().unwrap();
    let pinned = format!("docker://{}/base/app@{digest}", registry.addr);

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("base.oci.tar");
    let out = run(bin().args(["copy", "--json", &pinned]).arg(format!("oci-archive:{}", archive.display())));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["manifest_digest"], digest, "{report}");
    assert_eq!(report["architecture"], "amd64", "{report}");
    // The copy is the same image: its manifest digest, every blob verified, and skopeo reads it.
    let copied: serde_json::Value =
        serde_json::from_str(&run(bin().args(["inspect", "--json"]).arg(format!("oci-archive:{}", archive.display()))))
            .unwrap();
    assert_eq!((copied["manifest_digest"].as_str(), copied["verified"].as_bool()), (Some(digest), Some(true)));
    assert_eq!(skopeo_digest(&format!("oci-archive:{}", archive.display()), &[]), digest);

    // A digest the registry does not hold: one line naming the registry, nothing written.
    let other = format!("docker://{}/base/app@sha256:{}", registry.addr, "0".repeat(64));
    let missing = work.path().join("missing.oci.tar");
    assert_refused(&[&missing], &[&registry.addr, "MANIFEST_UNKNOWN"], || {
        bin().args(["copy", &other]).arg(format!("oci-archive:{}", missing.display())).output().unwrap()
    });
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1, "only the first copy is there");
}
