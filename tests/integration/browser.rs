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

    /// Saves a PNG of the element `css` selects as `target/tmp/screenshots/NAME.png`.
    fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        let element = self.find(css);
        let encoded = self.call(
            "GET",
            &format!("/element/{element}/screenshot"),
            &Value::Null,
        );
        save_png(&encoded, name)
    }

    /// Saves a PNG of the viewport as `target/tmp/screenshots/NAME.png`; its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", "/screenshot", &Value::Null);
        save_png(&encoded, name)
    }
}

/// Decodes a WebDriver screenshot and keeps it as `target/tmp/screenshots/NAME.png`.
fn save_png(encoded: &Value, name: &str) -> PathBuf {
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

/// A marker no page may run: an alias, a reason and a name carry it.
const XSS_ALIAS: &str = "<img src=x onerror=\"window.__xss=1\">bot";
const XSS_REASON: &str = "<script>window.__xss=2</script>checked the traffic";

/// Hang guards for the console scenario's waits (polls of 200 ms).
const WAIT_ROUNDS: u32 = 900;
const WAIT_PAUSE: Duration = Duration::from_millis(200);

/// `vigil serve` as a child, its stderr collected by a thread.
struct Served {
    address: SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _child: ChildGuard,
}

impl Served {
    fn start(config: &Path, cwd: &Path) -> Served {
        let mut child = ChildGuard::new(
            support::vigil_command(
                [
                    "serve".as_ref(),
                    "--config".as_ref(),
                    config.as_os_str(),
                    "--listen".as_ref(),
                    "127.0.0.1:0".as_ref(),
                ],
                cwd,
            )
            .spawn()
            .expect("spawning vigil serve"),
        );
        let stderr = child.child_mut().stderr.take().expect("piped stderr");
        let stdout = child.child_mut().stdout.take().expect("piped stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let _stdout = stdout;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                collected.lock().expect("the lines").push(line);
            }
        });
        let mut address = None;
        for _ in 0..WAIT_ROUNDS {
            address = lines.lock().expect("the lines").iter().find_map(|line| {
                line.contains("vigil serving")
                    .then(|| line.rsplit_once("://"))
                    .flatten()
                    .and_then(|(_, address)| address.trim().parse().ok())
            });
            if address.is_some() {
                break;
            }
            std::thread::sleep(WAIT_PAUSE);
        }
        let address = address.unwrap_or_else(|| {
            panic!(
                "vigil serve printed no address:\n{}",
                lines.lock().expect("the lines").join("\n")
            )
        });
        Served {
            address,
            lines,
            _child: child,
        }
    }

    fn logged(&self) -> String {
        self.lines.lock().expect("the lines").join("\n")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// Waits until `done` holds, for what `what` says; panics with `context()` after the rounds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    for _ in 0..WAIT_ROUNDS {
        if done() {
            return;
        }
        std::thread::sleep(WAIT_PAUSE);
    }
    panic!("gave up waiting until {what}:\n{}", context());
}

/// The console's config: the simulated gateway's, advisory, with the admin API and the
/// console.
fn console_config(dir: &TempDir, stack: &support::SimStack, tokens_file: &Path) -> PathBuf {
    let extra = format!(
        "admin:\n  tokens_file: \"{}\"\nconsole: {{}}\n",
        tokens_file.display()
    );
    let text = support::sim_stack_config(
        stack,
        &dir.join("ledger.db"),
        &support::repo_root().join("policies"),
        "advisory",
        &extra,
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, text).expect("writing the config");
    path
}

/// Stops the simulated gateway when the test ends, however it ends.
struct Stopping(tokio_util::sync::CancellationToken);

impl Drop for Stopping {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Browser {
    /// The W3C id of the first element `css` selects.
    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": css}),
        );
        found
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    /// Types `text` into the element `css` selects, as a keyboard would.
    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            &json!({"text": text}),
        );
    }

    /// Presses keys (`\u{E004}` Tab, `\u{E007}` Enter) on whatever has the focus.
    fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.call(
            "POST",
            "/actions",
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    fn path(&self) -> String {
        self.run("return location.pathname + location.search")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn text(&self) -> String {
        self.run("return document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits for the page at a path starting with `path` to have loaded.
    fn wait_for_page(&self, path: &str) {
        wait_until(
            &format!("the page {path} loads"),
            || {
                self.path().starts_with(path)
                    && self.run("return document.readyState") == "complete"
            },
            || format!("at {}: {}", self.path(), self.text()),
        );
    }

    /// Signs in as the holder of `token`, from the keyboard: the token, then Enter.
    fn sign_in(&self, served: &Served, token: &str) {
        self.open(&served.url("/console/login"));
        self.wait_for_page("/console/login");
        self.type_into("#token", &format!("{token}\u{E007}"));
        self.wait_for_page("/console/incidents");
    }

    fn sign_out(&self) {
        self.run("document.querySelector('form.who button').click()");
        self.wait_for_page("/console/login");
    }

    /// What every page must meet: nothing overflows sideways, every visible control has a
    /// label or text, no markup that came from outside ran, and the headings are there.
    fn check_page(&self, name: &str) -> Value {
        let facts = self.run(
            "const root = document.documentElement;
             const unlabelled = Array.from(document.querySelectorAll('input, select, textarea'))
               .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
               .map(e => e.outerHTML);
             const mute = Array.from(document.querySelectorAll('button, a'))
               .filter(e => e.innerText.trim() === '' && !e.getAttribute('aria-label'))
               .map(e => e.outerHTML);
             const unreachable = Array.from(document.querySelectorAll('a, button, input, select'))
               .filter(e => e.tabIndex < 0 && e.type !== 'hidden').map(e => e.outerHTML);
             const wide = Array.from(document.querySelectorAll('body *'))
               .filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth + 0.5 || e.scrollWidth > e.clientWidth + 0.5 && getComputedStyle(e).overflowX === 'visible')
               .slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 60));
             return {overflow: root.scrollWidth - window.innerWidth, viewport: window.innerWidth, wide,
               unlabelled, mute, unreachable, xss: window.__xss === undefined ? null : window.__xss,
               h1: (document.querySelector('h1') || {}).textContent};",
        );
        assert!(
            facts["overflow"].as_f64().is_some_and(|px| px <= 0.0),
            "{name}: overflows the {} px viewport sideways: {facts}",
            facts["viewport"]
        );
        for list in ["unlabelled", "mute", "unreachable"] {
            assert_eq!(facts[list], json!([]), "{name}: {list} controls");
        }
        assert_eq!(facts["xss"], Value::Null, "{name}: markup from outside ran");
        facts
    }
}

#[test]
fn the_console_shows_an_advisory_incident_live_and_only_another_approver_approves_it() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let dir = TempDir::new("browser-console");
    // The runbook's owner (`vigil`, who requests its steps) holds a token too, as a team's
    // service account would; alice is on the key's team's rotation; vic only views.
    let (tokens_file, tokens) = support::admin_tokens(
        dir.path(),
        &[
            support::Person {
                name: "Vigil",
                groups: &["apps-oncall"],
                roles: &["admin"],
            },
            support::Person {
                name: "alice@example.com",
                groups: &["apps-oncall"],
                roles: &["approver"],
            },
            support::Person {
                name: "vic@example.com",
                groups: &["apps-oncall"],
                roles: &["viewer"],
            },
        ],
    );
    // The third key's alias is markup: every page must show it as text.
    let gateway = support::start_sim_stack(dir.path(), &["support-bot", "search-rag", XSS_ALIAS]);
    let _stopping = Stopping(gateway.stop.clone());
    let config = console_config(&dir, &gateway, &tokens_file);
    let served = Served::start(&config, dir.path());
    let browser = Browser::start(&chromium, &driver, &dir);
    browser.resize(DESKTOP);

    // 1. A viewer watches the incident list; the incident appears without a reload.
    browser.sign_in(&served, &tokens["vic@example.com"]);
    wait_until(
        "the live stream is on",
        || browser.run("return document.getElementById('live').textContent") == "live updates: on",
        || browser.text(),
    );
    let before = browser.run("window.__same_page = 'yes'; return document.querySelectorAll('#incidents tbody tr').length");
    assert_eq!(before, 0, "{}", browser.text());
    wait_until(
        "eight scrapes",
        || {
            support::http_get(served.address, "/metrics").is_ok_and(|metrics| {
                metrics.body.lines().any(|line| {
                    line.starts_with("vigil_scrapes_total{")
                        && line.contains("result=\"ok\"")
                        && line
                            .rsplit(' ')
                            .next()
                            .and_then(|value| value.parse::<f64>().ok())
                            .is_some_and(|n| n >= 8.0)
                })
            })
        },
        || served.logged(),
    );
    let runaway = gateway.raw_keys[2].clone();
    gateway
        .traffic
        .set_rate(&runaway, 20.0, 1500)
        .expect("making the key run away");
    wait_until(
        "the advisory incident appears on the open page",
        || {
            browser.run("return document.querySelectorAll('#incidents tbody .state.awaiting_approval').length")
                .as_u64()
                .is_some_and(|n| n > 0)
        },
        || format!("{}\n--- vigil:\n{}", browser.text(), served.logged()),
    );
    assert_eq!(
        browser.run("return window.__same_page"),
        "yes",
        "the row came live, not by reloading the page"
    );
    browser.check_page("incidents");
    browser.screenshot("console-incidents-live");
    let incident_href = browser
        .run("return document.querySelector('#incidents tbody a').getAttribute('href')")
        .as_str()
        .expect("a link to the incident")
        .to_owned();

    // 2. The viewer reads the proposal but has no approve button, and an approval forged
    //    with the viewer's own session and token is refused by the engine.
    browser.open(&served.url("/console/proposals"));
    browser.wait_for_page("/console/proposals");
    let proposal = browser.run(
        "return {buttons: document.querySelectorAll('button[value=approve]').length,
                 id: (document.querySelector('section.proposal code') || {}).textContent,
                 hash: (document.querySelector('code.hash') || {}).textContent,
                 csrf: document.querySelector('input[name=csrf]').value};",
    );
    assert_eq!(
        proposal["buttons"], 0,
        "a viewer sees no approve button: {proposal}"
    );
    assert!(browser.text().contains("do not hold the approver role"));
    browser.check_page("proposals-viewer");
    browser.screenshot("console-proposals-viewer");
    let forged = browser.run(&format!(
        "const body = new URLSearchParams({{csrf: {csrf}, proposal_id: {id}, action_hash: {hash},
             reason: 'forged', decision: 'approve'}});
         const xhr = new XMLHttpRequest();
         xhr.open('POST', '/console/proposals/decide', false);
         xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
         xhr.send(body.toString());
         return {{status: xhr.status, text: xhr.responseText}};",
        csrf = proposal["csrf"],
        id = proposal["id"],
        hash = proposal["hash"],
    ));
    assert_eq!(
        forged["status"], 409,
        "a viewer's approval is refused: {forged}"
    );
    assert!(!gateway.gateway.is_blocked(&runaway));
    browser.sign_out();

    // 3. The requester (the runbook's owner) gets the form, and is refused.
    browser.sign_in(&served, &tokens["Vigil"]);
    browser.open(&served.url("/console/proposals"));
    browser.wait_for_page("/console/proposals");
    browser.type_into("input[name=reason]", "my own step");
    browser.run("document.querySelector('button[value=approve]').click()");
    browser.wait_for_page("/console/proposals/decide");
    let refused = browser.text();
    assert!(
        refused.contains("Refused") && refused.contains("cannot also approve"),
        "{refused}"
    );
    browser.check_page("approve-requester");
    browser.screenshot("console-requester-refused");
    assert!(!gateway.gateway.is_blocked(&runaway));
    browser.sign_out();

    // 4. Another approver approves, from the keyboard, with a reason that is markup.
    browser.sign_in(&served, &tokens["alice@example.com"]);
    browser.open(&served.url("/console/proposals"));
    browser.wait_for_page("/console/proposals");
    browser.check_page("proposals-approver");
    browser.screenshot("console-proposals-approver");
    browser.type_into("input[name=reason]", XSS_REASON);
    // The focus is on the reason: Tab reaches Approve, Enter presses it.
    browser.press("\u{E004}\u{E007}");
    browser.wait_for_page("/console/proposals/decide");
    let approved = browser.text();
    assert!(approved.contains("Done: approved"), "{approved}");
    wait_until(
        "the key is blocked",
        || gateway.gateway.is_blocked(&runaway),
        || served.logged(),
    );

    // 5. The incident page: the action, its verification and the resolution, the charts.
    let incident_url = served.url(&incident_href);
    wait_until(
        "the incident is resolved",
        || {
            browser.open(&incident_url);
            browser.text().contains("resolved") && browser.text().contains("passed")
        },
        || format!("{}\n--- vigil:\n{}", browser.text(), served.logged()),
    );
    let page = browser.run(
        "return {state: document.getElementById('state').textContent,
          paths: Array.from(document.querySelectorAll('figure.chart path.series')).map(p => p.getAttribute('d')),
          circles: document.querySelectorAll('figure.chart circle').length,
          levels: Array.from(document.querySelectorAll('figure.chart g.level text')).map(t => t.textContent),
          actions: Array.from(document.querySelectorAll('section.action')).map(s => s.innerText),
          decisions: document.querySelectorAll('#decisions tbody tr').length,
          text: document.body.innerText};",
    );
    assert_eq!(page["state"], "resolved", "{page}");
    let paths = page["paths"].as_array().expect("paths");
    assert!(
        !paths.is_empty()
            && paths.iter().all(|d| d
                .as_str()
                .is_some_and(|d| d.starts_with('M') && d.contains(" L"))),
        "the charts draw their series: {page}"
    );
    let levels: Vec<&str> = page["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        levels.iter().any(|level| level.starts_with("baseline"))
            && levels.iter().any(|level| level.starts_with("fires at")),
        "{levels:?}"
    );
    let action = page["actions"][0].as_str().unwrap_or_default();
    assert!(
        action.contains("succeeded") && action.contains("POST http://127.0.0.1:"),
        "{page}"
    );
    assert!(
        page["decisions"].as_u64().is_some_and(|n| n >= 2),
        "runbook step and alice's approval: {page}"
    );
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(XSS_ALIAS),
        "the alias is shown as text: {text}"
    );
    assert!(
        text.contains(XSS_REASON),
        "the reason is shown as text: {text}"
    );
    assert!(text.contains("alice@example.com"), "{text}");
    // Page weight and time to first render, measured by the browser over five loads.
    let mut paints = Vec::new();
    let mut measured = Value::Null;
    for _ in 0..5 {
        browser.open(&incident_url);
        browser.wait_for_page("/console/incident");
        for _ in 0..50 {
            measured = browser.run(
                "const nav = performance.getEntriesByType('navigation')[0];
                 const paint = performance.getEntriesByName('first-contentful-paint')[0];
                 return {html: nav.encodedBodySize,
                   assets: performance.getEntriesByType('resource').filter(r => r.name.includes('/console/assets/')).map(r => [r.name, r.encodedBodySize]),
                   fcp: paint ? paint.startTime : null, dom: nav.domContentLoadedEventEnd};",
            );
            if measured["fcp"].as_f64().is_some() {
                break;
            }
            std::thread::sleep(WAIT_PAUSE);
        }
        paints.extend(measured["fcp"].as_f64());
    }
    paints.sort_by(f64::total_cmp);
    let assets: u64 = measured["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .filter_map(|asset| asset[1].as_u64())
        .sum();
    let line = format!(
        "console incident page: {} bytes of HTML + {assets} bytes of assets ({}); \
         first contentful paint over {} loads: median {:.0} ms, all {paints:?}",
        measured["html"],
        measured["assets"],
        paints.len(),
        paints.get(paints.len() / 2).copied().unwrap_or(f64::NAN),
    );
    println!("{line}");
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-incident-page.txt"),
        format!("{line}\n"),
    )
    .expect("writing the measurement");
    for (name, size) in [
        ("console-incident-phone", PHONE),
        ("console-incident-desktop", DESKTOP),
    ] {
        browser.resize(size);
        browser.open(&incident_url);
        browser.wait_for_page("/console/incident");
        browser.check_page(name);
        browser.screenshot(name);
    }
    browser.resize(DESKTOP);
    browser.screenshot_of("figure.chart", "console-incident-chart");

    // 6. Replay from the page matches.
    browser.run("document.getElementById('replay').click()");
    browser.wait_for_page("/console/incident/replay");
    let replayed = browser.text();
    assert!(replayed.contains("Replay matches"), "{replayed}");
    browser.screenshot("console-replay");

    // 7. The report shows the incident, fixed with an approval.
    browser.open(&served.url("/console/report"));
    browser.wait_for_page("/console/report");
    let report = browser.run(
        "return Array.from(document.querySelectorAll('#report table tr')).map(r => r.innerText.replace(/\\s+/g, ' ').trim());",
    );
    let rows: Vec<&str> = report
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        rows.iter()
            .any(|row| row.starts_with("fixed with an approval 1")),
        "{rows:?}"
    );
    browser.check_page("report");
    browser.screenshot("console-report");
    // 8. What if no policy permitted anything: every allow of the window would change.
    browser.open(&served.url("/console/policies"));
    browser.wait_for_page("/console/policies");
    let prefilled = browser.run("return document.getElementById('what-if-policies').value");
    assert!(
        prefilled
            .as_str()
            .is_some_and(|text| text.contains("permit")),
        "the form starts from the policies in force: {prefilled}"
    );
    browser.run(
        "document.getElementById('what-if-policies').value = 'this is not cedar';
         document.querySelector('#what-if ~ form button').click();",
    );
    browser.wait_for_page("/console/policies/what-if");
    let problems = browser.text();
    assert!(
        problems.contains("These policies do not load"),
        "{problems}"
    );
    browser.run(
        "document.getElementById('what-if-policies').value = '@id(\"nothing\") forbid(principal, action, resource);';
         document.querySelector('#what-if ~ form button').click();",
    );
    browser.wait_for_page("/console/policies/what-if");
    let changed = browser.run(
        "return {text: document.getElementById('what-if-result').innerText,
                 rows: Array.from(document.querySelectorAll('#what-if-result tbody tr')).map(r => r.innerText)};",
    );
    let rows = changed["rows"].as_array().expect("rows");
    let rows: Vec<&str> = rows.iter().filter_map(Value::as_str).collect();
    assert!(
        rows.iter().all(|row| row.ends_with("deny (nothing)")),
        "{changed}"
    );
    let allowed_then = |needle: &str| {
        rows.iter()
            .any(|row| row.contains(needle) && row.contains("\tallow ("))
    };
    assert!(
        allowed_then("block-runaway-key block") && allowed_then("alice@example.com approve"),
        "the runbook's step and alice's approval would be denied: {changed}"
    );
    browser.check_page("what-if");
    browser.screenshot("console-what-if");
    // 9. The auditor's view: the ledger verifies from the page.
    browser.open(&served.url("/console/ledger"));
    browser.wait_for_page("/console/ledger");
    browser.run("document.getElementById('verify').click()");
    browser.wait_for_page("/console/ledger/verify");
    let verified = browser.text();
    assert!(verified.contains("Verified: all"), "{verified}");
    browser.check_page("ledger-verified");
    for (path, name) in [
        ("/console/controls", "console-controls"),
        ("/console/policies", "console-policies"),
        ("/console/ledger", "console-ledger"),
        ("/console/trust", "console-trust"),
    ] {
        browser.open(&served.url(path));
        browser.wait_for_page(path);
        browser.check_page(name);
        browser.screenshot(name);
    }
    drop(browser);
    drop(served);
}
