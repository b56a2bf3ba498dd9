//! The pages' HTML: one layout, one stylesheet, and escaping for every value put in
//! them. Pages are built with `format!`, so every piece of data goes through [`escape`]
//! (text and attribute values alike) and nothing else writes markup.

use std::fmt::Write as _;

use base64::Engine as _;

/// Phone-first: one column, large touch targets, the system font. The page allows this
/// stylesheet alone (by its hash in the Content-Security-Policy) and no script.
const STYLE: &str = "\
body{font:18px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;\
padding:16px;max-width:40em;margin-inline:auto;color:#1b1b1b;background:#fff}\
h1{font-size:1.35em;margin:.3em 0 .6em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em .8em;margin:0 0 1em}\
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}\
form{margin:1em 0}fieldset{border:1px solid #ccc;border-radius:8px;padding:.6em .9em;margin:0 0 1em}\
legend{padding:0 .3em}label{display:block;padding:.45em 0;cursor:pointer}\
input[type=radio]{width:1.3em;height:1.3em;vertical-align:middle;margin-right:.5em}\
input[type=text],input[type=datetime-local],textarea{font:inherit;width:100%;box-sizing:border-box;\
padding:.55em;border:1px solid #888;border-radius:6px;margin-top:.25em}\
button{font:inherit;font-weight:600;width:100%;min-height:3em;border:0;border-radius:8px;\
background:#0b57d0;color:#fff;padding:.7em 1em;margin:.4em 0;cursor:pointer}\
button.quiet{background:#e8eaed;color:#1b1b1b}\
:focus-visible{outline:3px solid #e37400;outline-offset:2px}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;border-radius:6px;padding:.7em;font-size:.85em}\
table{border-collapse:collapse;width:100%;font-size:.85em}th,td{text-align:left;vertical-align:top;\
padding:.3em .4em;border-bottom:1px solid #ddd}.note{color:#555;font-size:.9em}\
.done{border-left:5px solid #188038;padding-left:.7em}.warn{border-left:5px solid #b3261e;padding-left:.7em}";

/// `text` made safe for HTML text and for a double-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Content-Security-Policy of every answer: nothing may load or run but the one
/// stylesheet, forms go back here only, and no other site may frame the page.
pub fn content_security_policy() -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A whole page: `title` (plain text, escaped here) over `body` (markup built with
/// [`escape`]).
pub fn page(title: &str, body: &str) -> String {
    let title = escape(title);
    let mut out = String::with_capacity(body.len() + STYLE.len() + 400);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title><style>{STYLE}</style></head>\n\
         <body><main>\n<h1>{title}</h1>\n{body}</main></body></html>\n"
    );
    out
}

/// The answer to every link that does not check, whatever was wrong with it: one
/// text, so that no answer tells a prober more than another.
pub fn invalid_link() -> String {
    page(
        "This link is not valid",
        "<p>It may have expired, or been copied incompletely. The newest email about \
         this promise has links that work.</p>\n",
    )
}

/// A definition list of `(term, value)` pairs, both escaped; empty values are left out.
pub fn facts(pairs: &[(&str, String)]) -> String {
    let mut out = String::from("<dl>\n");
    for (term, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(value));
    }
    out.push_str("</dl>\n");
    out
}

/// A table with `header` over `rows`, every cell escaped.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("Café Ünïcode"), "Café Ünïcode");
    }

    #[test]
    fn a_page_escapes_its_title_and_facts() {
        let html = page("Mark '<b>' done?", &facts(&[("who", "<i>ana</i>".into())]));
        assert!(html.contains("<title>Mark &#39;&lt;b&gt;&#39; done?</title>"));
        assert!(html.contains("<dd>&lt;i&gt;ana&lt;/i&gt;</dd>"));
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("name=\"viewport\""));
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_stylesheet() {
        let policy = content_security_policy();
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!policy.contains("unsafe"));
        assert!(!policy.contains("script-src"));
    }
}
