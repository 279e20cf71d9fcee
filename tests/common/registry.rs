//! Registry servers for the tests: the loopback registry that scripts/setup-test-env.sh starts, and
//! docker-registry processes (Debian's, the reference implementation) started here, each on a free loopback port
//! with its own configuration: plain HTTP, htpasswd basic auth, TLS with a CA made at test time, or token auth.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::command::run;

/// The plain-HTTP registry without auth that scripts/setup-test-env.sh starts (`host:port`).
pub fn shared_registry() -> String {
    std::env::var("IMGCRAFT_REGISTRY")
        .expect("IMGCRAFT_REGISTRY unset: source the env.sh that scripts/setup-test-env.sh writes")
}

/// A docker-registry process on a free loopback port, with its access log in a file.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// How a [`TestRegistry`] authenticates and whether it speaks TLS; the default is plain HTTP without auth.
#[derive(Default)]
pub struct RegistryConfig {
    /// Basic authentication of one user: (user, password).
    pub htpasswd: Option<(String, String)>,
    pub tls: bool,
    /// Token authentication: the token service's address and its signing certificate (PEM).
    pub token: Option<(String, PathBuf)>,
    /// A fixed loopback port instead of a free one (for tests whose clients are configured by port).
    pub port: Option<u16>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestRegistry {
    pub fn start(config: RegistryConfig) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", config.port.unwrap_or_else(free_port));
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if config.tls {
            make_tls(dir.path());
            yaml += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            );
        }
        if let Some((user, password)) = &config.htpasswd {
            let file = dir.path().join("htpasswd");
            let line = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            std::fs::write(&file, line).unwrap();
            yaml += &format!("auth:\n  htpasswd:\n    realm: imgcraft-test\n    path: {}\n", file.display());
        }
        if let Some((service, cert)) = &config.token {
            yaml += &format!(
                "auth:\n  token:\n    realm: http://{service}/token\n    service: imgcraft-test-registry\n    \
                 issuer: imgcraft-test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            );
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/setup-test-env.sh installs it)");
        let registry = TestRegistry { child, dir, addr };
        registry.wait_until_listening();
        registry
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of requests with this method whose path holds `fragment`.
    pub fn requests(&self, method: &str, fragment: &str) -> usize {
        let needle = format!("\"{method} ");
        self.log().lines().filter(|l| l.contains(&needle) && l.contains(fragment)).count()
    }

    /// How many lines the log has: a mark to count requests from ([`TestRegistry::blob_bytes_since`]).
    pub fn log_lines(&self) -> usize {
        self.log().lines().count()
    }

    /// The blob GETs logged after line `mark` of the log: the body bytes the registry sent for them (the access
    /// log's size field, a range answer's included) and how many there were.
    pub fn blob_bytes_since(&self, mark: usize) -> (u64, usize) {
        let mut bytes = 0;
        let mut count = 0;
        for line in self.log().lines().skip(mark) {
            // `... "GET /v2/NAME/blobs/sha256:HEX HTTP/1.1" 206 30046 "" "agent"`
            let Some((request, rest)) = line
                .split_once("\" ")
                .and_then(|(head, rest)| head.rsplit_once('"').map(|(_, request)| (request, rest)))
            else {
                continue;
            };
            if !(request.starts_with("GET ") && request.contains("/blobs/sha256:")) {
                continue;
            }
            let size = rest.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok());
            bytes += size.unwrap_or_else(|| panic!("no size in the access log line {line}"));
            count += 1;
        }
        (bytes, count)
    }

    /// The directory holding the test CA's certificate, for `--cert-dir`.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1, made with openssl; the CA goes into `certs/ca.crt` for --cert-dir.
fn make_tls(dir: &Path) {
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=imgcraft test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    std::fs::create_dir(dir.join("certs")).unwrap();
    std::fs::copy(dir.join("ca.crt"), dir.join("certs/ca.crt")).unwrap();
}
