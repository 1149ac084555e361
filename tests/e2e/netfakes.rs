//! Small network stand-ins on loopback for the tests of how the plugin reaches a cluster: an
//! HTTP CONNECT proxy and a SOCKS5 proxy that count the tunnels they carried, a port nobody
//! listens on, a server that accepts and never answers, and a fake API server that answers
//! `/version` and records every request. Each runs on its own threads for the rest of the test
//! process; nothing leaves this machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::cluster;

/// Where a proxy sends a tunnel: names under `.test` stand for this machine, so that a server
/// address can be a name that is neither `localhost` nor a loopback IP (which kubectl never
/// proxies) and still reach the test cluster through the proxy.
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if host.ends_with(".test") {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut b, &mut a2);
        let _ = a2.shutdown(std::net::Shutdown::Write);
    });
}

/// A proxy that counts the tunnels it opened.
pub struct Proxy {
    pub addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
    scheme: &'static str,
}

impl Proxy {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    fn start(scheme: &'static str, serve: fn(TcpStream) -> Option<(TcpStream, TcpStream)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let count = tunnels.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let count = count.clone();
                std::thread::spawn(move || {
                    if let Some((client, upstream)) = serve(conn) {
                        count.fetch_add(1, Ordering::SeqCst);
                        pipe(client, upstream);
                    }
                });
            }
        });
        Self {
            addr,
            tunnels,
            scheme,
        }
    }

    /// An HTTP proxy that takes `CONNECT host:port`, as corporate proxies do.
    pub fn connect() -> Self {
        Self::start("http", |mut client| {
            let mut reader = BufReader::new(client.try_clone().ok()?);
            let mut first = String::new();
            reader.read_line(&mut first).ok()?;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
                    break;
                }
            }
            let target = first.strip_prefix("CONNECT ")?.split(' ').next()?;
            let (host, port) = target.rsplit_once(':')?;
            let upstream = resolve(host.trim_matches(['[', ']']), port.parse().ok()?)
                .and_then(|a| TcpStream::connect(a).ok());
            let Some(upstream) = upstream else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                return None;
            };
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .ok()?;
            Some((client, upstream))
        })
    }

    /// A SOCKS5 proxy without authentication (RFC 1928, CONNECT only).
    pub fn socks5() -> Self {
        Self::start("socks5", |mut client| {
            let mut head = [0u8; 2];
            client.read_exact(&mut head).ok()?;
            let mut methods = vec![0u8; usize::from(head[1])];
            client.read_exact(&mut methods).ok()?;
            client.write_all(&[5, 0]).ok()?;
            let mut req = [0u8; 4];
            client.read_exact(&mut req).ok()?;
            let host = match req[3] {
                1 => {
                    let mut ip = [0u8; 4];
                    client.read_exact(&mut ip).ok()?;
                    std::net::Ipv4Addr::from(ip).to_string()
                }
                3 => {
                    let mut len = [0u8; 1];
                    client.read_exact(&mut len).ok()?;
                    let mut name = vec![0u8; usize::from(len[0])];
                    client.read_exact(&mut name).ok()?;
                    String::from_utf8(name).ok()?
                }
                _ => return None,
            };
            let mut port = [0u8; 2];
            client.read_exact(&mut port).ok()?;
            let upstream = TcpStream::connect(resolve(&host, u16::from_be_bytes(port))?).ok()?;
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).ok()?;
            Some((client, upstream))
        })
    }
}

/// A loopback port nobody listens on: connecting to it is refused.
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A server that accepts connections and never says a word.
pub fn black_hole() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    addr
}

/// A plain-HTTP stand-in for an API server of another version: it answers `/version` (and the
/// canned answers it was started with) and records every request line; anything else gets a
/// 404 `Status`.
pub struct FakeApi {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

/// A canned answer: a request path (without its query) and the JSON it gets.
pub type Canned = (&'static str, String);

impl FakeApi {
    pub fn start(git_version: &str) -> Self {
        Self::answering(git_version, vec![])
    }

    /// [`FakeApi::start`], with `canned` answers to `GET`s of their paths.
    pub fn answering(git_version: &str, canned: Vec<Canned>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (log, version) = (requests.clone(), git_version.to_string());
        let canned = Arc::new(canned);
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let (log, version, canned) = (log.clone(), version.clone(), canned.clone());
                std::thread::spawn(move || serve_fake(conn, &log, &version, &canned));
            }
        });
        Self { addr, requests }
    }

    pub fn server(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request line so far, such as `GET /version HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_fake(conn: TcpStream, log: &Mutex<Vec<String>>, version: &str, canned: &[Canned]) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        log.lock().unwrap().push(first.trim().to_string());
        let minor: String = version
            .trim_start_matches("v1.")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let path = first
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default();
        let answer = canned
            .iter()
            .find(|(p, _)| first.starts_with("GET ") && *p == path);
        let (status, json) = if let Some((_, json)) = answer {
            ("200 OK", json.clone())
        } else if first.starts_with("GET /version") {
            (
                "200 OK",
                format!(
                    r#"{{"major":"1","minor":"{minor}","gitVersion":"{version}","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}}"#
                ),
            )
        } else {
            (
                "404 Not Found",
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not served by the fake","reason":"NotFound","code":404}"#.to_string(),
            )
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// The test cluster's address, CA and admin token, from its kubeconfig.
pub struct ClusterCreds {
    pub server: String,
    pub ca_data: String,
    pub token: String,
}

pub fn cluster_creds() -> ClusterCreds {
    let text = std::fs::read_to_string(cluster()).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in the test kubeconfig"))
            .trim()
            .to_string()
    };
    ClusterCreds {
        server: field("server:"),
        ca_data: field("certificate-authority-data:"),
        token: field("token:"),
    }
}

impl ClusterCreds {
    /// The apiserver's port.
    pub fn port(&self) -> u16 {
        self.server.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The CA as a file, for `--certificate-authority`.
    pub fn ca_file(&self, dir: &Path) -> PathBuf {
        use base64::Engine;
        let path = dir.join("ca.crt");
        let pem = base64::engine::general_purpose::STANDARD
            .decode(&self.ca_data)
            .unwrap();
        std::fs::write(&path, pem).unwrap();
        path
    }
}

/// Writes a kubeconfig of one cluster, one user and one context into `dir`. `cluster` and
/// `user` are YAML mappings' lines (indented by the caller's choice is not needed: each line
/// is indented here).
pub fn kubeconfig(dir: &Path, name: &str, cluster: &[String], user: &[String]) -> PathBuf {
    let indent = |lines: &[String]| {
        if lines.is_empty() {
            "    {}\n".to_string()
        } else {
            lines.iter().map(|l| format!("    {l}\n")).collect()
        }
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n{}users:\n- name: {name}\n  user:\n{}contexts:\n- name: ctx\n  context: {{cluster: c, user: {name}}}\ncurrent-context: ctx\n",
        indent(cluster),
        indent(user)
    );
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, text).unwrap();
    path
}
