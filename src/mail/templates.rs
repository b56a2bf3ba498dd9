//! Mail templates: built into the binary, each overridable by a file in the config
//! directory's `templates/` (`NAME.txt`, and optionally `NAME.html` for a multipart
//! alternative).
//!
//! A template's first line is `Subject: ...`, then a blank line, then the body. Every
//! variable a template uses is checked against the documented set when config loads,
//! so a typo is a `check-config` error, not a failed email at 3 am. Rendering is strict:
//! an undefined variable is an error, never an empty string.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::{ConfigError, line_column};

/// A template the program knows, with its built-in text.
struct Known {
    name: &'static str,
    builtin: &'static str,
}

const KNOWN: &[Known] = &[Known {
    name: "owner_reminder",
    builtin: include_str!("templates/owner_reminder.txt"),
}];

/// Variables every template may use. A dotted name allows that attribute; a bare name
/// allows the whole value.
pub const VARIABLES: &[&str] = &[
    "headline",
    "commitment.id",
    "commitment.title",
    "commitment.owner",
    "commitment.owner_name",
    "commitment.owner_email",
    "commitment.customer",
    "commitment.customer_name",
    "commitment.customer_email",
    "commitment.kind",
    "commitment.note",
    "commitment.ref",
    "commitment.due",
    "commitment.due_iso",
    "commitment.due_in",
    "commitment.timezone",
    "commitment.status",
    "step.kind",
    "step.label",
    "step.rule",
    "step.planned",
    "step.late",
    "commands.done",
    "commands.show",
    "commands.cancel",
];

/// A rendered message: subject, plain text and optionally HTML.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The subject line, on one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML alternative, if the template has one.
    pub html: Option<String>,
}

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No such template.
    #[error("no template named '{0}'")]
    Unknown(String),
    /// The template engine refused (undefined value, bad filter use, ...).
    #[error("template {name}: {source}")]
    Engine {
        /// The template.
        name: String,
        /// What went wrong.
        source: minijinja::Error,
    },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    html: BTreeMap<&'static str, bool>,
    origin: BTreeMap<&'static str, PathBuf>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// Splits `Subject: ...\n\nbody` into the subject template, the body template and the
/// 0-based line the body starts on.
fn split(source: &str) -> Option<(&str, &str, usize)> {
    let rest = source.strip_prefix("Subject:")?;
    let (subject, body) = rest.split_once('\n')?;
    let body = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))?;
    Some((subject.trim(), body, 2))
}

impl Templates {
    /// Only the built-in templates.
    pub fn builtin() -> Templates {
        let mut templates = Templates {
            env: environment(),
            html: BTreeMap::new(),
            origin: BTreeMap::new(),
        };
        for known in KNOWN {
            let origin = PathBuf::from(format!("<built-in {}.txt>", known.name));
            templates
                .add(known.name, known.builtin, None, &origin, None)
                .expect("built-in templates compile and use only documented variables");
        }
        templates
    }

    /// The built-in templates with overrides from `dir` (which need not exist).
    pub fn load(dir: &Path) -> Result<Templates, Vec<ConfigError>> {
        let mut templates = Templates::builtin();
        let mut errors = Vec::new();
        if !dir.is_dir() {
            return Ok(templates);
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return Err(vec![ConfigError::whole(dir, format!("cannot list: {e}"))]),
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in names.iter().filter(|p| p.is_file()) {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
            if ext != "txt" && ext != "html" {
                continue;
            }
            let Some(known) = KNOWN.iter().find(|k| k.name == stem) else {
                let names: Vec<_> = KNOWN.iter().map(|k| k.name).collect();
                errors.push(ConfigError::whole(
                    path,
                    format!(
                        "unknown template '{stem}'; templates are: {}",
                        names.join(", ")
                    ),
                ));
                continue;
            };
            if ext == "txt" {
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(ConfigError::whole(path, format!("cannot read: {e}")));
                        continue;
                    }
                };
                let html_path = dir.join(format!("{stem}.html"));
                let html = match html_path
                    .is_file()
                    .then(|| std::fs::read_to_string(&html_path))
                {
                    Some(Err(e)) => {
                        errors.push(ConfigError::whole(&html_path, format!("cannot read: {e}")));
                        None
                    }
                    Some(Ok(h)) => Some(h),
                    None => None,
                };
                if let Err(e) =
                    templates.add(known.name, &text, html.as_deref(), path, Some(&html_path))
                {
                    errors.extend(e);
                }
            } else if !dir.join(format!("{stem}.txt")).is_file() {
                let html = match std::fs::read_to_string(path) {
                    Ok(h) => h,
                    Err(e) => {
                        errors.push(ConfigError::whole(path, format!("cannot read: {e}")));
                        continue;
                    }
                };
                let builtin = PathBuf::from(format!("<built-in {}.txt>", known.name));
                if let Err(e) =
                    templates.add(known.name, known.builtin, Some(&html), &builtin, Some(path))
                {
                    errors.extend(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(templates)
        } else {
            Err(errors)
        }
    }

    fn add(
        &mut self,
        name: &'static str,
        text: &str,
        html: Option<&str>,
        text_path: &Path,
        html_path: Option<&Path>,
    ) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let Some((subject, body, body_line)) = split(text) else {
            return Err(vec![ConfigError::at(
                text_path,
                text,
                Some(0..0),
                "a template starts with a 'Subject: ...' line, then a blank line, then the body",
            )]);
        };
        let parts = [
            (
                format!("{name}.subject"),
                subject.to_string(),
                0usize,
                text_path,
            ),
            (
                format!("{name}.txt"),
                body.to_string(),
                body_line,
                text_path,
            ),
        ];
        let html_part = html.map(|h| {
            (
                format!("{name}.html"),
                h.to_string(),
                0usize,
                html_path.unwrap_or(text_path),
            )
        });
        for (key, source, first_line, path) in parts.into_iter().chain(html_part) {
            if let Err(e) = self.env.add_template_owned(key.clone(), source.clone()) {
                let line = e.line().map(|l| l + first_line).unwrap_or(first_line + 1);
                errors.push(ConfigError {
                    file: path.to_path_buf(),
                    line: Some(line),
                    column: Some(1),
                    message: format!(
                        "template syntax: {}",
                        e.detail().unwrap_or("invalid template")
                    ),
                });
                continue;
            }
            let template = self.env.get_template(&key).expect("just added");
            let mut unknown: Vec<String> = template
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| !variable_allowed(v))
                .collect();
            unknown.sort();
            for variable in unknown {
                let offset = source.find(variable.as_str()).unwrap_or(0);
                let (line, column) = line_column(&source, offset);
                errors.push(ConfigError {
                    file: path.to_path_buf(),
                    line: Some(line + first_line),
                    column: Some(column),
                    message: format!(
                        "unknown template variable '{variable}'; see the template variables in README.md"
                    ),
                });
            }
        }
        self.html.insert(name, html.is_some());
        self.origin.insert(name, text_path.to_path_buf());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<Rendered, RenderError> {
        let known = KNOWN
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| RenderError::Unknown(name.to_string()))?;
        let ctx = Value::from(minijinja::value::Serde(context));
        let render = |part: &str| -> Result<String, RenderError> {
            let key = format!("{}.{part}", known.name);
            let engine = |source| RenderError::Engine {
                name: key.clone(),
                source,
            };
            self.env
                .get_template(&key)
                .map_err(engine)?
                .render(ctx.clone())
                .map_err(engine)
        };
        let subject = render("subject")?;
        let text = render("txt")?;
        let html = if self.html.get(known.name).copied().unwrap_or(false) {
            Some(render("html")?)
        } else {
            None
        };
        Ok(Rendered {
            subject: crate::commitment::one_line(&subject),
            text,
            html,
        })
    }
}

fn variable_allowed(variable: &str) -> bool {
    VARIABLES.iter().any(|allowed| {
        *allowed == variable
            || allowed.split('.').next() == Some(variable)
            || variable.starts_with(&format!("{allowed}."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_load() {
        Templates::builtin();
    }

    #[test]
    fn a_typo_in_an_override_is_found_at_load_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("owner_reminder.txt"),
            "Subject: {{ headline }}\n\nHello {{ commitment.titel }}\n",
        )
        .unwrap();
        let errors = Templates::load(dir.path()).unwrap_err();
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(text.contains("owner_reminder.txt:3:"), "{text}");
        assert!(text.contains("commitment.titel"), "{text}");
    }

    #[test]
    fn a_template_without_a_subject_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("owner_reminder.txt"), "Hello\n").unwrap();
        let errors = Templates::load(dir.path()).unwrap_err();
        assert!(errors[0].message.contains("Subject:"));
    }

    #[test]
    fn an_unknown_template_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("owner_remider.txt"), "Subject: x\n\ny\n").unwrap();
        let errors = Templates::load(dir.path()).unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("unknown template 'owner_remider'")
        );
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("owner_reminder.txt"),
            "Subject: x\n\nline one\n{% if %}\n",
        )
        .unwrap();
        let errors = Templates::load(dir.path()).unwrap_err();
        assert_eq!(errors[0].line, Some(4), "{}", errors[0]);
    }

    #[test]
    fn overrides_render_with_an_html_part() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("owner_reminder.txt"),
            "Subject: {{ headline }}\n\nText {{ commitment.title }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("owner_reminder.html"),
            "<p>{{ commitment.title }}</p>\n",
        )
        .unwrap();
        let t = Templates::load(dir.path()).unwrap();
        let ctx = serde_json::json!({
            "headline": "Due now",
            "commitment": { "title": "<Quote> & co" },
        });
        let r = t.render("owner_reminder", &ctx).unwrap();
        assert_eq!(r.subject, "Due now");
        assert_eq!(r.text, "Text <Quote> & co\n");
        assert_eq!(r.html.as_deref(), Some("<p>&lt;Quote&gt; &amp; co</p>\n"));
    }
}
