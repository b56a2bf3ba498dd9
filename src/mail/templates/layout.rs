//! The HTML part of customer mail: the rendered plain text in a shipped layout, so
//! both parts say the same words. Every value is escaped; each paragraph of the text
//! (lines up to a blank line) becomes a `<p>`, its lines joined by `<br>`; the
//! business's name and contacts make the footer.

use serde::Serialize;

use super::{RenderError, Rendered, Templates};
use crate::config::Business;

/// The key the layout is kept under: no template file can have it (no `/` in a stem).
pub(super) const KEY: &str = "shipped/layout.html";

/// The layout's source.
pub(super) const SOURCE: &str = include_str!("layout.html");

#[derive(Serialize)]
struct Footer<'a> {
    name: Option<&'a str>,
    phone: Option<&'a str>,
    /// The number as a `tel:` link wants it: `+` and digits.
    phone_link: String,
    website: Option<&'a str>,
    /// The website as people read it, without `https://` and a trailing `/`.
    website_text: String,
}

#[derive(Serialize)]
struct Page<'a> {
    subject: &'a str,
    paragraphs: Vec<Vec<&'a str>>,
    business: Footer<'a>,
}

/// The paragraphs of `text`: runs of lines between blank lines, each line trimmed at
/// the end.
pub fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(line);
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

impl Templates {
    /// The HTML part for `rendered`, signed in the footer by `business`.
    pub fn layout(&self, rendered: &Rendered, business: &Business) -> Result<String, RenderError> {
        let website = business.website.as_deref();
        let page = Page {
            subject: &rendered.subject,
            paragraphs: paragraphs(&rendered.text),
            business: Footer {
                name: business.name.as_deref(),
                phone: business.phone.as_deref(),
                phone_link: business
                    .phone
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '+')
                    .collect(),
                website,
                website_text: website
                    .map(|w| {
                        w.trim_start_matches("https://")
                            .trim_start_matches("http://")
                            .trim_end_matches('/')
                            .to_string()
                    })
                    .unwrap_or_default(),
            },
        };
        let engine = |source| RenderError::Engine {
            name: KEY.to_string(),
            source,
        };
        self.env
            .get_template(KEY)
            .map_err(engine)?
            .render(minijinja::Value::from(minijinja::value::Serde(&page)))
            .map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_the_runs_of_lines_between_blank_lines() {
        let text = "Dear Joe,\n\nOne line.\n \n\n\nKind regards,\nAna\nAcme\n";
        assert_eq!(
            paragraphs(text),
            [
                vec!["Dear Joe,"],
                vec!["One line."],
                vec!["Kind regards,", "Ana", "Acme"]
            ]
        );
    }

    #[test]
    fn the_html_part_says_the_same_words_escaped_with_the_business_in_the_footer() {
        let templates = Templates::builtin();
        let rendered = Rendered {
            subject: "Your <order> & more".into(),
            text: "Dear Joe,\n\nParts <b>delayed</b> & late.\n\nKind regards,\nAna\n".into(),
            html: None,
        };
        let business = Business {
            name: Some("Mensah & Sons".into()),
            phone: Some("+44 20 7946 0018".into()),
            website: Some("https://plumbing.example.com/".into()),
            ..Business::default()
        };
        let html = templates.layout(&rendered, &business).unwrap();
        assert!(
            html.contains("<title>Your &lt;order&gt; &amp; more</title>"),
            "{html}"
        );
        assert!(
            html.contains(">Parts &lt;b&gt;delayed&lt;&#x2f;b&gt; &amp; late.</p>"),
            "{html}"
        );
        assert!(html.contains(">Kind regards,<br>\nAna</p>"), "{html}");
        assert!(html.contains("Mensah &amp; Sons"), "{html}");
        assert!(html.contains("href=\"tel:+442079460018\""), "{html}");
        assert!(html.contains(">plumbing.example.com</a>"), "{html}");
        // Without a business there is no footer.
        let html = templates.layout(&rendered, &Business::default()).unwrap();
        assert!(!html.contains("border-top"), "{html}");
    }
}
