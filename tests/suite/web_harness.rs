//! The test helpers themselves (the HTTP client, the links of an email, the headless
//! browser), proved on a small site of the test's own before the daemon's pages rely
//! on them.

use crate::common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use common::browser::Browser;
use common::http;

/// A small site on 127.0.0.1 for proving the helpers: `GET /` is a form, `POST /submit`
/// answers with the body it received.
fn static_site() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_one(stream));
        }
    });
    url
}

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><meta name="viewport" content="width=device-width"><title>Form</title></head>
<body><form method="post" action="/submit">
<input type="hidden" name="token" value="a&amp;b">
<label for="reason">Reason</label> <input id="reason" type="text" name="reason" value="">
<select name="when"><option value="1d">+1 day</option><option value="2d" selected>+2 days</option></select>
<textarea name="note">left &lt;here&gt;</textarea>
<button type="submit" name="choice" value="hold">Hold it</button>
</form></body></html>"#;

fn serve_one(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, page) = if request_line.starts_with("POST /submit") {
        let got = String::from_utf8_lossy(&body).replace('&', "&amp;");
        (
            "200 OK",
            format!("<html><body><p id=\"result\">got {got}</p></body></html>"),
        )
    } else if request_line.starts_with("GET / ") || request_line.starts_with("HEAD / ") {
        ("200 OK", FORM_PAGE.to_string())
    } else {
        ("404 Not Found", "not here".to_string())
    };
    let head_only = request_line.starts_with("HEAD ");
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        page.len()
    );
    if !head_only {
        answer.push_str(&page);
    }
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
}

#[test]
fn http_helper_reads_pages_and_submits_forms() {
    let site = static_site();
    let page = http::get(&format!("{site}/"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let head = http::head(&format!("{site}/"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(http::get(&format!("{site}/nothing")).status, 404);

    let forms = http::forms_in(&page.text());
    assert_eq!(forms.len(), 1);
    let mut form = forms[0].clone();
    assert_eq!(form.method, "post");
    assert_eq!(form.field("token"), Some("a&b"));
    assert_eq!(form.field("when"), Some("2d"));
    assert_eq!(form.field("note"), Some("left <here>"));
    assert_eq!(
        form.buttons,
        vec![("choice".to_string(), "hold".to_string())]
    );
    form.set("reason", "I called him");
    let answer = form.submit(&format!("{site}/"), Some(("choice", "hold")));
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .text()
            .contains("got token=a%26b&amp;reason=I+called+him&amp;when=2d"),
        "{}",
        answer.text()
    );
}

#[test]
fn links_in_finds_each_url_of_an_email() {
    let text = "Mark it done: http://127.0.0.1:8025/a/AbC-_x1.\n\
                Delay (<https://followup.example.com/a/Zz9>), or open\thttp://h:1/a/q";
    assert_eq!(
        http::links_in(text),
        vec![
            "http://127.0.0.1:8025/a/AbC-_x1",
            "https://followup.example.com/a/Zz9",
            "http://h:1/a/q",
        ]
    );
}

#[test]
fn browser_helper_fills_and_submits_a_form() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let site = static_site();
    browser.goto(&format!("{site}/"));
    assert_eq!(browser.title(), "Form");
    browser.fill("#reason", "I called him");
    let shot = browser.screenshot("helper-form");
    assert!(std::fs::metadata(&shot).unwrap().len() > 0);
    browser.click("button[name=choice]");
    let text = browser.wait_for_text("got ", Duration::from_secs(10));
    assert!(browser.url().ends_with("/submit"), "{}", browser.url());
    assert!(text.contains("reason=I+called+him"), "{text}");
    assert!(text.contains("choice=hold"), "{text}");
}
