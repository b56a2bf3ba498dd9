//! A real browser for the tests: headless Chromium driven through chromedriver, speaking
//! WebDriver's JSON over the tiny client in [`super::http`]. Absent `chromium` or
//! `chromedriver`, [`Browser::start`] prints why and gives `None` so the test can skip;
//! with `FOLLOWUP_REQUIRE_BROWSER=1` (CI sets it) a missing browser fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::http;

/// The width and height of the window: a phone's (an iPhone 14's CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; the browser and its driver end when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    /// Holds the browser's profile.
    _profile: tempfile::TempDir,
}

/// A program on `PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The browser binary: Debian's `chromium` wrapper runs this one.
fn chromium() -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    on_path("chromium").or_else(|| on_path("chromium-browser"))
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium at phone width; `None`
    /// (with the reason printed) when either is missing, unless `FOLLOWUP_REQUIRE_BROWSER=1`.
    pub fn start() -> Option<Browser> {
        let (browser, driver) = match (chromium(), on_path("chromedriver")) {
            (Some(b), Some(d)) => (b, d),
            (b, d) => {
                let missing: Vec<&str> = [("chromium", b.is_none()), ("chromedriver", d.is_none())]
                    .into_iter()
                    .filter_map(|(name, absent)| absent.then_some(name))
                    .collect();
                let reason = format!(
                    "{} not installed (Debian: apt-get install chromium chromium-driver)",
                    missing.join(" and ")
                );
                if std::env::var("FOLLOWUP_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!("FOLLOWUP_REQUIRE_BROWSER=1 but {reason}");
                }
                eprintln!("skipped: {reason}");
                return None;
            }
        };
        Some(Browser::launch(&browser, &driver))
    }

    fn launch(browser: &Path, driver: &Path) -> Browser {
        let port = super::free_port();
        let profile = tempfile::tempdir().unwrap();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let mut started = Browser {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        super::wait_until("chromedriver ready", Duration::from_secs(20), || {
            let status = http::try_request("GET", &format!("{}/status", started.base), &[], b"");
            let ready = status.ok().and_then(|r| {
                let v: Value = serde_json::from_slice(&r.body).ok()?;
                v["value"]["ready"].as_bool()
            });
            (ready == Some(true)).then_some(())
        });
        let mut args = vec![
            "--headless=new".to_string(),
            format!("--window-size={},{}", PHONE.0, PHONE.1),
            "--disable-dev-shm-usage".to_string(),
            "--disable-gpu".to_string(),
            "--no-first-run".to_string(),
            format!("--user-data-dir={}", started._profile.path().display()),
        ];
        if nix::unistd::Uid::effective().is_root() {
            args.push("--no-sandbox".to_string());
        }
        let session = started.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": browser.display().to_string(),
                    "args": args,
                    // A desktop window is at least 500 pixels wide: emulate the phone.
                    "mobileEmulation": {"deviceMetrics": {
                        "width": PHONE.0, "height": PHONE.1, "pixelRatio": 1.0, "touch": true,
                    }},
                },
            }}}),
        );
        started.session = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {session}"))
            .to_string();
        started
    }

    /// One WebDriver command; returns its `value`, panicking with the driver's error.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let bytes = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let response = http::request(
            method,
            &url,
            &[("Content-Type", "application/json; charset=utf-8")],
            &bytes,
        );
        let value: Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {}", response.text()));
        assert!(
            response.status == 200,
            "WebDriver {method} {path}: {} {}",
            response.status,
            value["value"]
        );
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    /// The URL of the page shown.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.session_call("GET", "/title", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.session_call("GET", "/source", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text the page shows (its body's rendered text).
    pub fn text(&self) -> String {
        // A script rather than an element: a click that submits a form may return
        // before the next page replaced this one, and an element of the old page
        // would be stale.
        self.session_call(
            "POST",
            "/execute/sync",
            json!({"script": "return document.body ? document.body.innerText : '';", "args": []}),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the page shown says `needle` (the next page after a click, say) and
    /// returns its text; panics, with the text shown last, after `timeout`.
    pub fn wait_for_text(&self, needle: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::wait_until(&format!("a page saying {needle:?}"), timeout, || {
                last = self.text();
                last.contains(needle).then(|| last.clone())
            })
        }));
        found.unwrap_or_else(|_| panic!("no page saying {needle:?}; shown last: {last}"))
    }

    /// The first element matching the CSS `selector`; panics if there is none.
    pub fn find(&self, selector: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": selector}),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector:?}: {found}"))
            .to_string()
    }

    /// Replaces the value of the field matching `selector` with `text`, typed.
    pub fn fill(&self, selector: &str, text: &str) {
        let element = self.find(selector);
        self.session_call("POST", &format!("/element/{element}/clear"), json!({}));
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Clicks the element matching `selector` (a button submits its form, and the call
    /// returns once the next page has loaded).
    pub fn click(&self, selector: &str) {
        let element = self.find(selector);
        self.session_call("POST", &format!("/element/{element}/click"), json!({}));
    }

    /// Writes a PNG of the window to `target/screenshots/NAME.png` and returns its path:
    /// for a person to look at, not for comparing.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.session_call("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// `target/screenshots`, beside the test binary's `debug/` (wherever CARGO_TARGET_DIR
/// puts it).
pub fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // TARGET/debug/deps/NAME-HASH
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http::try_request(
                "DELETE",
                &format!("{}/session/{}", self.base, self.session),
                &[],
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
