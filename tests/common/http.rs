//! A tiny HTTP/1.1 client over `std::net::TcpStream` for the tests of the daemon's web
//! pages: one request per connection (`Connection: close`), every read and write under
//! a timeout, so that a page that never answers fails the test instead of hanging it.
//! Also what a test needs around it: the links in an email, and the form on a page.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// How long a connect, a read or a write may take before the request fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer as received.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// In order, names as sent.
    pub headers: Vec<(String, String)>,
    /// After undoing chunked transfer coding, if any.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A URL split into what a request needs: `http://HOST:PORT/PATH?QUERY`.
#[derive(Clone, Debug)]
pub struct Url {
    /// `host:port` as written (the Host header).
    pub authority: String,
    /// The path and query, `/` at least.
    pub target: String,
}

impl Url {
    /// Parses `url`; only `http://` (the daemon serves plain HTTP behind a proxy).
    pub fn parse(url: &str) -> Url {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("not an http:// URL: {url:?}"));
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Url {
            authority: authority.to_string(),
            target: target.to_string(),
        }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        let with_port = if self.authority.contains(':') {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        with_port
            .to_socket_addrs()
            .unwrap_or_else(|e| panic!("cannot resolve {with_port}: {e}"))
            .next()
            .unwrap_or_else(|| panic!("no address for {with_port}"))
    }

    /// `http://host:port`, what an `Origin` header of this site says.
    pub fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }
}

/// `GET url`.
pub fn get(url: &str) -> Response {
    request("GET", url, &[], b"")
}

/// `HEAD url`.
pub fn head(url: &str) -> Response {
    request("HEAD", url, &[], b"")
}

/// `POST url` of `fields` as `application/x-www-form-urlencoded`, with `headers` added
/// (an `Origin`, a `Sec-Fetch-Site`...).
pub fn post_form(url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Response {
    let body = form_encode(fields);
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request("POST", url, &all, body.as_bytes())
}

/// One request with `headers` (Host, Content-Length and `Connection: close` are added)
/// and `body`; panics, naming the request, if the connection fails or times out.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Like [`request`], returning the error.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let parsed = Url::parse(url);
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        parsed.target, parsed.authority
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let mut stream = connect(parsed.addr())?;
    stream.write_all(&bytes)?;
    let answer = read_response(&mut stream, method == "HEAD")?;
    parse_response(&answer, method == "HEAD")
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads one whole response from `stream`: to the end of its body as its headers
/// announce it, or to the close of the connection (some servers keep it open despite
/// `Connection: close`).
fn read_response(stream: &mut TcpStream, head_only: bool) -> std::io::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if response_complete(&answer, head_only) {
            return Ok(answer);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(answer);
        }
        answer.extend_from_slice(&buf[..n]);
    }
}

/// Whether `bytes` hold a whole response (headers, and a body of known length).
fn response_complete(bytes: &[u8], head_only: bool) -> bool {
    let Some(end) = find(bytes, b"\r\n\r\n") else {
        return false;
    };
    if head_only {
        return true;
    }
    let Ok(parsed) = parse_response(&bytes[..end + 4], true) else {
        return false;
    };
    let body = &bytes[end + 4..];
    if parsed
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        return dechunk(body).is_ok();
    }
    match parsed.header("content-length").map(str::parse::<usize>) {
        Some(Ok(length)) => body.len() >= length,
        _ => matches!(parsed.status, 204 | 304) || (100..200).contains(&parsed.status),
    }
}

/// Sends `bytes` as they are and returns everything received until the server closes
/// the connection (or a read times out after [`TIMEOUT`], an error).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    stream.write_all(bytes)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// A connection to `addr` with [`TIMEOUT`] on connect, reads and writes.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Parses one response; `head_only` for the answer to HEAD (no body whatever the
/// headers say).
pub fn parse_response(bytes: &[u8], head_only: bool) -> Result<Response, String> {
    let end = find(bytes, b"\r\n\r\n").ok_or("no end of the header section")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "a header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {line:?}"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &bytes[end + 4..];
    if head_only {
        if !rest.is_empty() {
            return Err(format!("{} bytes of body after HEAD", rest.len()));
        }
        return Ok(response);
    }
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        if rest.len() < length {
            return Err(format!("body of {} bytes, {length} announced", rest.len()));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("a chunk without a size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("a chunk cut short".to_string());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `fields` as `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Every `http://` or `https://` URL in `text` (an email's plain text), in order, as
/// far as the first character that cannot be part of one; trailing punctuation of the
/// sentence is not taken.
pub fn links_in(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let from = &rest[start..];
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ')' | ']'))
            .unwrap_or(from.len());
        let link = from[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
        links.push(link.to_string());
        rest = &from[end..];
    }
    links
}

/// A `<form>` of a page, as a browser would submit it.
#[derive(Clone, Debug, Default)]
pub struct Form {
    /// Its `action`, as written (empty: the page's own URL).
    pub action: String,
    /// `method`, lowercased (`get` if absent).
    pub method: String,
    /// The named `<input>`s (hidden, text, date..., checked radios and checkboxes),
    /// `<textarea>`s and `<select>`s (their selected option, else the first), in
    /// order, with the value they start with.
    pub fields: Vec<(String, String)>,
    /// The named submit buttons: `(name, value)`; a browser sends the one clicked.
    pub buttons: Vec<(String, String)>,
}

impl Form {
    /// The field `name`'s value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value` (added if the form has no such field).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }

    /// Where it posts, resolved against `page_url` (the URL it was shown at).
    pub fn target(&self, page_url: &str) -> String {
        let page = Url::parse(page_url);
        if self.action.is_empty() {
            page_url.to_string()
        } else if self.action.starts_with("http://") {
            self.action.clone()
        } else if self.action.starts_with('/') {
            format!("{}{}", page.origin(), self.action)
        } else {
            let dir = &page.target[..page.target.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{dir}{}", page.origin(), self.action)
        }
    }

    /// Submits it as a browser on `page_url` would, pressing `button` (a `(name,
    /// value)` of [`Form::buttons`], or none), with the page's origin as `Origin`.
    pub fn submit(&self, page_url: &str, button: Option<(&str, &str)>) -> Response {
        let mut fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        fields.extend(button);
        let origin = Url::parse(page_url).origin();
        post_form(
            &self.target(page_url),
            &fields,
            &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
        )
    }
}

/// Every `<form>` in `html`, in order. A small reader for the daemon's own pages (plain
/// HTML, attributes quoted), not a general HTML parser.
pub fn forms_in(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut rest = html;
    while let Some(start) = find_tag(rest, "form") {
        let from = &rest[start..];
        let end = find_ci(from, "</form").unwrap_or(from.len());
        let inner = &from[..end];
        let open = tag_text(inner);
        let mut form = Form {
            action: attr(open, "action").unwrap_or_default(),
            method: attr(open, "method")
                .unwrap_or_else(|| "get".to_string())
                .to_ascii_lowercase(),
            ..Form::default()
        };
        read_controls(&inner[open.len()..], &mut form);
        forms.push(form);
        rest = &from[end..];
    }
    forms
}

fn read_controls(mut html: &str, form: &mut Form) {
    loop {
        let next = ["input", "select", "textarea", "button"]
            .iter()
            .filter_map(|t| find_tag(html, t).map(|i| (i, *t)))
            .min();
        let Some((at, tag)) = next else { return };
        html = &html[at..];
        let open = tag_text(html);
        let name = attr(open, "name");
        let kind = attr(open, "type").unwrap_or_default().to_ascii_lowercase();
        match (tag, name) {
            ("input", Some(name)) => {
                let value = attr(open, "value").unwrap_or_default();
                let checked = has_attr(open, "checked");
                match kind.as_str() {
                    "submit" | "image" => form.buttons.push((name, value)),
                    "radio" | "checkbox" if !checked => {}
                    "radio" | "checkbox" => form.fields.push((name, value)),
                    _ => form.fields.push((name, value)),
                }
            }
            ("button", Some(name)) if kind != "button" && kind != "reset" => {
                form.buttons
                    .push((name, attr(open, "value").unwrap_or_default()));
            }
            ("textarea", Some(name)) => {
                let body = &html[open.len()..];
                let end = find_ci(body, "</textarea").unwrap_or(body.len());
                form.fields.push((name, unescape(&body[..end])));
            }
            ("select", Some(name)) => {
                let body = &html[open.len()..];
                let end = find_ci(body, "</select").unwrap_or(body.len());
                let options = options_in(&body[..end]);
                let chosen = options
                    .iter()
                    .find(|(_, selected)| *selected)
                    .or(options.first())
                    .map(|(v, _)| v.clone())
                    .unwrap_or_default();
                form.fields.push((name, chosen));
            }
            _ => {}
        }
        html = &html[open.len()..];
    }
}

fn options_in(mut html: &str) -> Vec<(String, bool)> {
    let mut options = Vec::new();
    while let Some(at) = find_tag(html, "option") {
        html = &html[at..];
        let open = tag_text(html);
        let body = &html[open.len()..];
        let end = find_ci(body, "</option").unwrap_or(body.len());
        let value = attr(open, "value").unwrap_or_else(|| unescape(body[..end].trim()));
        options.push((value, has_attr(open, "selected")));
        html = &html[open.len()..];
    }
    options
}

/// Where the start tag `<name` (followed by a space, `>` or `/`) begins.
fn find_tag(html: &str, name: &str) -> Option<usize> {
    let lower = html.to_ascii_lowercase();
    let pattern = format!("<{name}");
    let mut from = 0;
    while let Some(i) = lower[from..].find(&pattern) {
        let at = from + i;
        match lower.as_bytes().get(at + pattern.len()) {
            Some(b' ' | b'>' | b'/' | b'\n' | b'\t' | b'\r') => return Some(at),
            _ => from = at + pattern.len(),
        }
    }
    None
}

fn find_ci(html: &str, needle: &str) -> Option<usize> {
    html.to_ascii_lowercase().find(needle)
}

/// The start tag at the beginning of `html`, `<` to `>` inclusive (a `>` inside quotes
/// does not end it).
fn tag_text(html: &str) -> &str {
    let mut quote = None;
    for (i, c) in html.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return &html[..=i],
            _ => {}
        }
    }
    html
}

/// The value of attribute `name` in a start tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let (quote, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
            _ => (None, value),
        };
        let end = match quote {
            Some(q) => body.find(q).unwrap_or(body.len()),
            None => body
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(body.len()),
        };
        return Some(unescape(&body[..end]));
    }
    None
}

/// Whether a start tag has the boolean attribute `name` (`checked`, `selected`).
fn has_attr(tag: &str, name: &str) -> bool {
    tag.to_ascii_lowercase()
        .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .any(|word| word == name || word.starts_with(&format!("{name}=")))
}

/// Undoes the HTML escapes the pages use.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The address the daemon's pages are served at, from its log line `web pages at
/// http://...` (it listens on a free port in tests); waits for the line up to `timeout`.
pub fn web_url(daemon: &super::Daemon, timeout: Duration) -> String {
    super::wait_until("the daemon's \"web pages at\" log line", timeout, || {
        let log = daemon.log();
        let at = log.find("web pages at ")?;
        let rest = &log[at + "web pages at ".len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches('/').to_string();
        url.starts_with("http://").then_some(url)
    })
}
