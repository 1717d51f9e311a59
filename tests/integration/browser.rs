//! vigil's pages in a real browser: Debian's Chromium driven over W3C WebDriver by
//! `chromedriver`, both started on loopback by the test. The WebDriver client is the few
//! commands these tests need, over bounded HTTP/1.1 exchanges.
//!
//! Each page is loaded at a phone's width (390 CSS pixels) and a desktop's, checked for what
//! it must show and for horizontal overflow (a phone must not have to scroll sideways), and
//! photographed: the screenshots are kept in `target/tmp/screenshots/` and their paths
//! printed, as test artifacts.
//!
//! Where no browser is installed (`/usr/bin/chromium` and `/usr/bin/chromedriver`, or
//! `VIGIL_TEST_CHROMIUM` and `VIGIL_TEST_CHROMEDRIVER`) the tests say so and pass; under
//! `CI=true` they fail instead, since `.ci/run` installs both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption, helper functions included"
)]

#[allow(
    dead_code,
    reason = "shared with the cli tests, which use the rest of it"
)]
#[allow(
    clippy::disallowed_types,
    reason = "the shared support bounds its waits on child processes with std instants"
)]
#[path = "../support/mod.rs"]
mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use support::{ChildGuard, TempDir, simulate_scenario, vigil};

/// How many times chromedriver's `/status` is asked before giving up (a hang guard).
const READY_ROUNDS: u32 = 400;

/// A phone's viewport, in CSS pixels (an iPhone 12 to 15).
const PHONE: (u32, u32) = (390, 844);
/// A laptop's.
const DESKTOP: (u32, u32) = (1280, 900);

fn executable(variable: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// The browser and its driver, or `None` (after saying why) where they are not installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = executable("VIGIL_TEST_CHROMIUM", "/usr/bin/chromium");
    let driver = executable("VIGIL_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            let message = "browser tests skipped: Chromium and chromedriver are not installed \
                           (apt-get install chromium chromium-driver; .ci/run does)";
            if std::env::var("CI").is_ok_and(|value| value == "true") {
                panic!("{message}, and CI=true requires them");
            }
            eprintln!("{message}");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A chromedriver on loopback with one headless Chromium session.
struct Browser {
    address: SocketAddr,
    session: String,
    _driver: ChildGuard,
}

impl Browser {
    fn start(chromium: &Path, driver: &Path, dir: &TempDir) -> Browser {
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("a log file");
        let child = Command::new(driver)
            .args([
                format!("--port={port}"),
                "--allowed-ips=127.0.0.1".to_owned(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", driver.display()));
        let guard = ChildGuard::new(child);
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let ready = (0..READY_ROUNDS).any(|_| {
            let ready = exchange(address, "GET", "/status", "")
                .ok()
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if !ready {
                std::thread::sleep(support::POLL);
            }
            ready
        });
        assert!(ready, "chromedriver did not become ready on {address}");
        let profile = dir.join("profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created = command(address, "POST", "/session", &capabilities);
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            address,
            session,
            _driver: guard,
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        command(
            self.address,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", &json!({"url": url}));
    }

    fn resize(&self, (width, height): (u32, u32)) {
        self.call(
            "POST",
            "/window/rect",
            &json!({"width": width, "height": height}),
        );
    }

    /// Runs `script` (a function body) in the page; its `return` value.
    fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": []}),
        )
    }

    /// Saves a PNG of the viewport as `target/tmp/screenshots/NAME.png`; its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", "/screenshot", &Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 text"))
            .expect("a base64 PNG");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("writing the screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = exchange(
            self.address,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
        );
    }
}

/// How long one WebDriver request may take (starting the browser is the slowest).
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// The largest WebDriver answer read (a desktop screenshot is about 200 KiB of base64).
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// One HTTP/1.1 exchange with chromedriver, which keeps connections open whatever the
/// request says: the answer is read by its `Content-Length`, every read bounded. The status
/// and the body.
fn exchange(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_LIMIT)?;
    stream.set_read_timeout(Some(REQUEST_LIMIT))?;
    stream.set_write_timeout(Some(REQUEST_LIMIT))?;
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || bytes.len() > MAX_ANSWER_BYTES {
            return Err(invalid(format!(
                "no complete head: {:?}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("no status: {head}")))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| invalid(format!("no Content-Length: {head}")))?;
    if length > MAX_ANSWER_BYTES {
        return Err(invalid(format!("an answer of {length} bytes")));
    }
    let mut body = bytes.split_off(head_end + 4);
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(invalid("the answer ended early".to_owned()));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One WebDriver command; its `value`, or a panic with the driver's error.
fn command(address: SocketAddr, method: &str, path: &str, body: &Value) -> Value {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = exchange(address, method, path, &body)
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let parsed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{method} {path}: {error}: {text}"));
    assert_eq!(status, 200, "{method} {path}: {parsed}");
    parsed["value"].clone()
}

/// The page's layout facts a test checks: whether anything overflows the viewport sideways,
/// and the rendered boxes of the outcome bar's parts.
const LAYOUT: &str = "const root = document.documentElement;
return {
  title: document.title,
  overflow: root.scrollWidth - window.innerWidth,
  viewport: window.innerWidth,
  bars: Array.from(document.querySelectorAll('svg rect')).map(r => {
    const box = r.getBoundingClientRect();
    return {width: box.width, height: box.height, label: r.textContent};
  }),
  scripts: document.scripts.length,
  headings: Array.from(document.querySelectorAll('h1, h2')).map(h => h.textContent),
};";

#[test]
fn the_report_page_renders_on_a_phone_and_a_desktop() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let dir = TempDir::new("browser-report");
    // A game day whose fix failed and paged: the bar has a part for it.
    let ledger = dir.join("failed-fix.db");
    simulate_scenario("failed-fix", &ledger);
    let report = vigil(
        [
            "report",
            "--db",
            ledger.to_str().expect("UTF-8"),
            "--format",
            "html",
        ],
        dir.path(),
    );
    report.assert_success("report --format html");
    let page = dir.join("report.html");
    std::fs::write(&page, &report.stdout).expect("writing the page");

    let browser = Browser::start(&chromium, &driver, &dir);
    for (name, size) in [("report-phone", PHONE), ("report-desktop", DESKTOP)] {
        browser.resize(size);
        browser.open(&format!("file://{}", page.display()));
        let layout = browser.run(LAYOUT);
        assert_eq!(layout["title"], "vigil report", "{layout}");
        assert_eq!(layout["scripts"], 0, "{layout}");
        assert!(
            layout["overflow"].as_f64().is_some_and(|px| px <= 0.0),
            "{name}: the page overflows the {} px viewport sideways: {layout}",
            layout["viewport"]
        );
        let bars = layout["bars"].as_array().expect("bars");
        assert!(
            bars.iter().any(|bar| bar["label"] == "paged a person: 1"
                && bar["width"].as_f64().is_some_and(|width| width > 10.0)),
            "{name}: the outcome bar does not show the paged incident: {layout}"
        );
        let headings: Vec<&str> = layout["headings"]
            .as_array()
            .expect("headings")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            headings,
            [
                "vigil report",
                "Incidents",
                "Pages and times",
                "Top causes",
                "Engineer-hours returned"
            ],
            "{name}"
        );
        browser.screenshot(name);
    }
}
