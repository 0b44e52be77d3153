//! Debian's nginx with libnginx-mod-rtmp as a foreign RTMP origin (tests/nginx-origin.conf.in),
//! on a free port with its own prefix directory; stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

pub struct NginxOrigin {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl NginxOrigin {
    pub fn start() -> NginxOrigin {
        assert!(
            Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists(),
            "libnginx-mod-rtmp is missing (scripts/test.sh installs nginx and libnginx-mod-rtmp)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let template =
            std::fs::read_to_string(repo_root().join("tests/nginx-origin.conf.in")).unwrap();
        let config = template
            .replace("@PORT@", &port.to_string())
            .replace("@PREFIX@", &dir.path().display().to_string());
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        NginxOrigin { addr, child, dir }
    }

    /// `rtmp://127.0.0.1:PORT/{app}/{stream}`.
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://{}/{app}/{stream}", self.addr)
    }

    /// `127.0.0.1:PORT`, as a PullDomainName.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// How many play requests for `stream` the origin has taken (nginx-rtmp logs each one at
    /// level info as `play: name='{stream}' …`).
    pub fn plays(&self, stream: &str) -> usize {
        self.error_log()
            .matches(&format!("play: name='{stream}'"))
            .count()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for NginxOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
