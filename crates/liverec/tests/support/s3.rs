//! S3 peer for the tests: a moto_server (from `.venv`, installed by scripts/test.sh) of each
//! test's own on a free port, an independent S3 client (boto3 through `tests/s3tool.py`), and
//! [`CutProxy`], a TCP proxy a test can cut to make storage unreachable.
//!
//! Each test starts its own server rather than sharing one: pause, stop and cuts are faults of
//! a whole server, tests run in parallel (nextest: one process each), and a server shared
//! across processes would need a daemon that could outlive the run. A moto_server starts in
//! about a second and holds ~60 MB. Servers die with the fixture's Drop (panics included) and,
//! through a parent-death signal, with the test process if it is killed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A program of the project's `.venv`.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = super::repo_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test.sh (it installs tests/requirements.txt into .venv)",
        path.display()
    );
    path
}

// Sets a parent-death signal, then becomes moto_server: if the test process dies without
// running Drop (killed by a timeout, say), the kernel kills moto, even while it is stopped.
const EXEC_WITH_PDEATHSIG: &str = "import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
if os.getppid() != int(sys.argv[1]):
    sys.exit('test process gone before moto_server started')
os.execv(sys.argv[2], sys.argv[2:])
";

/// Spawns `cmd` from one thread that lives as long as the test process: the parent-death
/// signal fires when the spawning *thread* ends, which must not be a test's short-lived one.
fn spawn_from_long_lived_thread(cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("moto-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner.lock().unwrap().send((cmd, tx)).expect("spawner");
    rx.recv().expect("spawner reply")
}

/// A moto_server of the test's own on 127.0.0.1 (S3 and every other AWS service moto mocks,
/// in memory), killed on Drop.
pub struct MotoServer {
    child: Mutex<Option<Child>>,
    pid: u32,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    client: S3Client,
}

impl MotoServer {
    /// Starts `.venv/bin/moto_server -H 127.0.0.1 -p 0` and waits until it accepts
    /// connections (the port is the one it reports, so no other process can take it first).
    pub fn start() -> MotoServer {
        let moto = venv_bin("moto_server");
        let python = venv_bin("python");
        let mut cmd = Command::new(&python);
        cmd.arg("-c")
            .arg(EXEC_WITH_PDEATHSIG)
            .arg(std::process::id().to_string())
            .arg(&moto)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_from_long_lived_thread(cmd)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
        let pid = child.id();
        let stderr = child.stderr.take().expect("moto stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        {
            let log = log.clone();
            // Keeps draining: moto logs every request, and a full pipe would block it.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[moto {pid}] {line}");
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = line
                        .split("Running on http://127.0.0.1:")
                        .nth(1)
                        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        break port;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "moto_server did not report its port within 60 s:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server on {addr} does not accept connections"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MotoServer {
            child: Mutex::new(Some(child)),
            pid,
            port,
            log,
            client: S3Client::new(&format!("http://{addr}")),
        }
    }

    /// `http://127.0.0.1:PORT`, for path-style S3 requests (any credentials, any region).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The fixture's own client (boto3, 3 attempts, 10 s timeouts).
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    pub fn create_bucket(&self, name: &str) {
        self.client.create_bucket(name);
    }

    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) {
        self.client.put_object(bucket, key, data);
    }

    /// The object's bytes, or None if the bucket holds no such key.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.client.get_object(bucket, key)
    }

    /// (key, size) of every object under `prefix`, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        self.client.list(bucket, prefix)
    }

    pub fn delete_object(&self, bucket: &str, key: &str) {
        self.client.delete_object(bucket, key);
    }

    /// Freezes the server (SIGSTOP) and returns once it is stopped: connections are still
    /// accepted by the kernel but nothing answers, like storage that hangs.
    pub fn pause(&self) {
        self.signal("STOP");
        self.wait_paused(true);
    }

    /// Lets a paused server go on (SIGCONT) and returns once it runs; requests sent meanwhile
    /// are answered now.
    pub fn resume(&self) {
        self.signal("CONT");
        self.wait_paused(false);
    }

    // A signal takes effect when the process is next scheduled, not when kill returns.
    fn wait_paused(&self, paused: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.is_paused() != paused {
            assert!(
                Instant::now() < deadline,
                "moto_server {} did not {} within 30 s",
                self.pid,
                if paused { "stop" } else { "continue" }
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the process is stopped by [`MotoServer::pause`] (from /proc).
    pub fn is_paused(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "T"))
            })
            .unwrap_or(false)
    }

    /// Kills the server for good (its objects are gone with it): connections are refused.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Turns moto's IAM authentication on or off (`/moto-api/reset-auth`). On, every request
    /// must be signed with the keys of an IAM user made in this moto, so any other credentials
    /// (liverec's and this fixture's client's `test`/`test`) are refused with 403
    /// `InvalidAccessKeyId`; off (the default), any credentials are accepted.
    pub fn require_auth(&self, on: bool) {
        use std::io::Read;
        // Requests before the count are not authenticated: 0 = from now on, inf = never.
        let body = if on { "0" } else { "inf" };
        let addr = self.addr();
        let mut conn = TcpStream::connect(addr).expect("connect to moto");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            conn,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("moto's answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "reset-auth: {answer}");
    }

    /// A proxy to this server that a test can cut; see [`CutProxy`].
    pub fn proxy(&self) -> CutProxy {
        CutProxy::start(self.addr())
    }

    /// What moto logged so far (one line per request).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        assert!(
            self.child.lock().unwrap().is_some(),
            "moto_server was stopped"
        );
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused process too.
        if let Some(mut child) = self.child.get_mut().ok().and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An S3 client independent of liverec: boto3 in a `tests/s3tool.py serve` process, started
/// on first use and ended on Drop (or when the test process dies: its stdin closes).
pub struct S3Client {
    endpoint: String,
    timeout_secs: u32,
    attempts: u32,
    helper: Mutex<Option<Helper>>,
}

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl S3Client {
    /// A patient client: 3 attempts, 10 s connect and read timeouts.
    pub fn new(endpoint: &str) -> S3Client {
        S3Client::with(endpoint, 10, 3)
    }

    /// One attempt with 5 s timeouts: a refused or dropped connection is an error at once.
    pub fn fail_fast(endpoint: &str) -> S3Client {
        S3Client::with(endpoint, 5, 1)
    }

    pub fn with(endpoint: &str, timeout_secs: u32, attempts: u32) -> S3Client {
        S3Client {
            endpoint: endpoint.to_owned(),
            timeout_secs,
            attempts,
            helper: Mutex::new(None),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn try_create_bucket(&self, name: &str) -> Result<(), String> {
        self.call(serde_json::json!({"op": "mkbucket", "bucket": name}))
            .map(drop)
    }

    pub fn try_put_object(&self, bucket: &str, key: &str, data: &[u8]) -> Result<(), String> {
        self.call(serde_json::json!({"op": "put", "bucket": bucket, "key": key, "data": hex(data)}))
            .map(drop)
    }

    /// Ok(None) when the bucket holds no such key.
    pub fn try_get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let answer = self.call(serde_json::json!({"op": "get", "bucket": bucket, "key": key}));
        match answer {
            Ok(a) => {
                let data = a["data"].as_str().ok_or("no data in the answer")?;
                unhex(data).map(Some)
            }
            Err(e) if e == MISSING => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn try_list(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, String> {
        let a = self.call(serde_json::json!({"op": "list", "bucket": bucket, "prefix": prefix}))?;
        a["objects"]
            .as_array()
            .ok_or("no objects in the answer")?
            .iter()
            .map(|o| match (o[0].as_str(), o[1].as_u64()) {
                (Some(key), Some(size)) => Ok((key.to_owned(), size)),
                _ => Err(format!("bad object in the answer: {o}")),
            })
            .collect()
    }

    pub fn try_delete_object(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.call(serde_json::json!({"op": "delete", "bucket": bucket, "key": key}))
            .map(drop)
    }

    pub fn create_bucket(&self, name: &str) {
        self.try_create_bucket(name)
            .unwrap_or_else(|e| panic!("create bucket {name} at {}: {e}", self.endpoint));
    }

    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) {
        self.try_put_object(bucket, key, data)
            .unwrap_or_else(|e| panic!("put {bucket}/{key} at {}: {e}", self.endpoint));
    }

    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.try_get_object(bucket, key)
            .unwrap_or_else(|e| panic!("get {bucket}/{key} at {}: {e}", self.endpoint))
    }

    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        self.try_list(bucket, prefix)
            .unwrap_or_else(|e| panic!("list {bucket}/{prefix} at {}: {e}", self.endpoint))
    }

    pub fn delete_object(&self, bucket: &str, key: &str) {
        self.try_delete_object(bucket, key)
            .unwrap_or_else(|e| panic!("delete {bucket}/{key} at {}: {e}", self.endpoint));
    }

    /// One request to the helper; Err(MISSING) for a get of no such key.
    fn call(&self, request: serde_json::Value) -> Result<serde_json::Value, String> {
        let mut guard = self.helper.lock().unwrap();
        let helper = match guard.as_mut() {
            Some(h) => h,
            None => guard.insert(self.spawn_helper()),
        };
        let mut line = request.to_string();
        line.push('\n');
        let mut answer = String::new();
        let io = helper
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| helper.stdin.flush())
            .and_then(|()| helper.stdout.read_line(&mut answer));
        if !matches!(io, Ok(n) if n > 0) {
            // The helper died (its error is on stderr); start a new one next time.
            let mut dead = guard.take().expect("helper");
            let _ = dead.child.kill();
            let _ = dead.child.wait();
            return Err(format!("tests/s3tool.py serve died: {io:?}"));
        }
        let answer: serde_json::Value = serde_json::from_str(&answer)
            .map_err(|e| format!("bad answer from s3tool.py ({e}): {answer}"))?;
        if answer["ok"].as_bool() == Some(true) {
            Ok(answer)
        } else if answer["missing"].as_bool() == Some(true) {
            Err(MISSING.to_owned())
        } else {
            Err(answer["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned())
        }
    }

    fn spawn_helper(&self) -> Helper {
        let script = super::repo_root().join("tests/s3tool.py");
        let mut child = Command::new(venv_bin("python"))
            .arg(&script)
            .args([
                "--timeout",
                &self.timeout_secs.to_string(),
                "--attempts",
                &self.attempts.to_string(),
                &self.endpoint,
                "serve",
            ])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        Helper {
            stdin: child.stdin.take().expect("helper stdin"),
            stdout: BufReader::new(child.stdout.take().expect("helper stdout")),
            child,
        }
    }
}

const MISSING: &str = "no such key";

impl Drop for S3Client {
    fn drop(&mut self) {
        if let Some(mut h) = self.helper.get_mut().ok().and_then(Option::take) {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// A TCP proxy on 127.0.0.1 (a port of its own) to `upstream`. [`CutProxy::cut`] drops
/// every connection and closes the port, so new connections are refused;
/// [`CutProxy::restore`] listens on the same port again.
pub struct CutProxy {
    addr: SocketAddr,
    inner: Arc<ProxyInner>,
    acceptor: Option<JoinHandle<()>>,
}

struct ProxyInner {
    upstream: SocketAddr,
    cut: AtomicBool,
    next_id: AtomicU64,
    /// Both sockets of every open connection, to shut them down on a cut.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

impl CutProxy {
    pub fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let inner = Arc::new(ProxyInner {
            upstream,
            cut: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let acceptor = Some(spawn_acceptor(listener, inner.clone()));
        CutProxy {
            addr,
            inner,
            acceptor,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn is_cut(&self) -> bool {
        self.acceptor.is_none()
    }

    /// Number of connections open through the proxy.
    pub fn open_connections(&self) -> usize {
        self.inner.conns.lock().unwrap().len()
    }

    /// Drops every connection (both ends see EOF) and stops listening: connects are refused
    /// until [`CutProxy::restore`].
    pub fn cut(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.inner.cut.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        let _ = acceptor.join();
        // The acceptor has registered every connection it accepted by now.
        for (_, (client, upstream)) in self.inner.conns.lock().unwrap().drain() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    /// Listens on the same port again.
    pub fn restore(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        // The port was ours a moment ago; retry in case the kernel is slow to free it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot listen on {} again: {e}",
                        self.addr
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        self.inner.cut.store(false, Ordering::SeqCst);
        self.acceptor = Some(spawn_acceptor(listener, self.inner.clone()));
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn spawn_acceptor(listener: TcpListener, inner: Arc<ProxyInner>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if inner.cut.load(Ordering::SeqCst) {
                break;
            }
            let Ok(client) = conn else { continue };
            let Ok(upstream) = TcpStream::connect(inner.upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
                client.try_clone(),
                upstream.try_clone(),
                client.try_clone(),
                upstream.try_clone(),
            ) else {
                continue;
            };
            let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
            inner.conns.lock().unwrap().insert(id, (c3, u3));
            let done = Arc::new(AtomicBool::new(false));
            pump(client, u2, id, done.clone(), inner.clone());
            pump(upstream, c2, id, done, inner.clone());
        }
    })
}

/// Copies `from` to `to` until EOF, then half-closes `to`; the second pump of a connection
/// to finish forgets it.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    id: u64,
    done: Arc<AtomicBool>,
    inner: Arc<ProxyInner>,
) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
        if done.swap(true, Ordering::SeqCst) {
            inner.conns.lock().unwrap().remove(&id);
        }
    });
}
