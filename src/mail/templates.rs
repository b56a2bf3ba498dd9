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
use crate::planner::StepKind;

/// What a template is for, which decides the variables it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// Owner reminders.
    Reminder,
    /// "No news yet" updates to the customer.
    CustomerUpdate,
    /// The owner hears what the customer was told.
    UpdateSent,
    /// Alerts and escalations about a missed promise.
    Missed,
    /// Check-ins after the work is done.
    CheckIn,
    /// The owner hears that an email failed for good.
    Failure,
    /// The owner's say before a customer update goes.
    AskOwner,
    /// The digest of an owner's open work.
    Digest,
    /// The "promises kept" report.
    Report,
    /// The internal email when a commitment is recorded (`on_open`).
    OnOpen,
}

/// A template the program has built in.
struct Builtin {
    name: &'static str,
    kind: TemplateKind,
    text: &'static str,
}

const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "owner_reminder",
        kind: TemplateKind::Reminder,
        text: include_str!("templates/owner_reminder.txt"),
    },
    Builtin {
        name: "no_news_yet",
        kind: TemplateKind::CustomerUpdate,
        text: include_str!("templates/no_news_yet.txt"),
    },
    Builtin {
        name: "update_sent",
        kind: TemplateKind::UpdateSent,
        text: include_str!("templates/update_sent.txt"),
    },
    Builtin {
        name: "alert",
        kind: TemplateKind::Missed,
        text: include_str!("templates/alert.txt"),
    },
    Builtin {
        name: "escalation",
        kind: TemplateKind::Missed,
        text: include_str!("templates/escalation.txt"),
    },
    Builtin {
        name: "check_in_owner",
        kind: TemplateKind::CheckIn,
        text: include_str!("templates/check_in_owner.txt"),
    },
    Builtin {
        name: "delivery_failed",
        kind: TemplateKind::Failure,
        text: include_str!("templates/delivery_failed.txt"),
    },
    Builtin {
        name: "ask_owner",
        kind: TemplateKind::AskOwner,
        text: include_str!("templates/ask_owner.txt"),
    },
    Builtin {
        name: "digest",
        kind: TemplateKind::Digest,
        text: include_str!("templates/digest.txt"),
    },
    Builtin {
        name: "report",
        kind: TemplateKind::Report,
        text: include_str!("templates/report.txt"),
    },
    Builtin {
        name: "check_in_customer",
        kind: TemplateKind::CheckIn,
        text: include_str!("templates/check_in_customer.txt"),
    },
    Builtin {
        name: "service_failure",
        kind: TemplateKind::OnOpen,
        text: include_str!("templates/service_failure.txt"),
    },
    Builtin {
        name: "quote_follow_up",
        kind: TemplateKind::CheckIn,
        text: include_str!("templates/quote_follow_up.txt"),
    },
    Builtin {
        name: "wrap_up",
        kind: TemplateKind::CheckIn,
        text: include_str!("templates/wrap_up.txt"),
    },
];

/// Variables every template may use. A dotted name allows that attribute; a bare name
/// allows the whole value.
pub const VARIABLES: &[&str] = &[
    "headline",
    "recipient.name",
    "recipient.email",
    "commitment.id",
    "commitment.title",
    "commitment.promise",
    "commitment.has_promise",
    "commitment.owner",
    "commitment.owner_name",
    "commitment.owner_email",
    "commitment.customer",
    "commitment.customer_name",
    "commitment.customer_email",
    "commitment.kind",
    "commitment.note",
    "commitment.ref",
    "commitment.reason",
    "commitment.due",
    "commitment.due_iso",
    "commitment.due_in",
    "commitment.done",
    "commitment.done_when",
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
    "commands.delay",
    "commands.reason",
    "customer.name",
    "customer.since",
    "customer.kept_percent",
    "customer.open",
    "business.name",
    "business.phone",
    "business.website",
    "business.signature",
    "sign_off",
];

/// Links that act on the commitment, in the business's own emails (`links` is null in
/// a customer's, and in everyone's when the daemon serves no pages: test it with
/// `{% if links %}` and quote `commands` otherwise).
pub const LINK_VARIABLES: &[&str] = &[
    "links.done",
    "links.delay",
    "links.snooze",
    "links.cancel",
    "links.open",
    "links.close",
    "links.wait",
    "links.resume",
];

/// Variables only the owner's say before a customer update has.
pub const ASK_VARIABLES: &[&str] = &[
    "links.send_now",
    "links.hold",
    "ask.goes_in",
    "ask.goes_at",
    "ask.update",
    "ask.send_now",
    "ask.hold",
];

/// Variables of customer updates and of the owner's copy.
pub const UPDATE_VARIABLES: &[&str] = &[
    "update.number",
    "update.max",
    "update.original_due",
    "update.previous_due",
    "update.new_due",
    "update.reason",
];

/// Variables only the owner's copy of an update has: what the customer got.
pub const UPDATE_SENT_VARIABLES: &[&str] = &["update.customer_subject", "update.customer_text"];

/// Variables only the on-open email has: the customer's recent history, lists of
/// promises with `id`, `title`, `promise`, `due`, `done` (or none), `status`, `how`.
pub const ON_OPEN_VARIABLES: &[&str] = &["customer.open_promises", "customer.missed_recent"];

/// Variables of alerts and escalations.
pub const MISSED_VARIABLES: &[&str] = &["missed.by", "missed.due"];

/// Variables of the notice that an email failed.
pub const FAILURE_VARIABLES: &[&str] = &[
    "failure.recipient",
    "failure.audience",
    "failure.subject",
    "failure.error",
    "failure.attempts",
    "failure.update",
];

/// Variables of the digest: lists of items with `id`, `title`, `customer`, `due`,
/// `when`, `done`, `links` (as `links.*`, or null), of updates with `id`, `title`, `customer`, `sent`, `subject`, and of
/// failed emails with `id`, `title`, `failed`, `subject`, `error`.
pub const DIGEST_VARIABLES: &[&str] = &[
    "owner.name",
    "owner.email",
    "date",
    "overdue",
    "today",
    "week",
    "later",
    "updates",
    "failed",
    "commands.list",
];

/// Variables of the report's email.
pub const REPORT_VARIABLES: &[&str] = &[
    "report.table",
    "report.from",
    "report.to",
    "report.by",
    "date",
];

impl TemplateKind {
    /// Every variable a template of this kind may use.
    pub fn variables(self) -> Vec<&'static str> {
        match self {
            TemplateKind::Digest => return DIGEST_VARIABLES.to_vec(),
            TemplateKind::Report => return REPORT_VARIABLES.to_vec(),
            _ => {}
        }
        let mut all = VARIABLES.to_vec();
        if self != TemplateKind::CustomerUpdate {
            all.extend(LINK_VARIABLES);
        }
        match self {
            TemplateKind::Reminder | TemplateKind::CheckIn => {}
            TemplateKind::OnOpen => all.extend(ON_OPEN_VARIABLES),
            TemplateKind::CustomerUpdate => all.extend(UPDATE_VARIABLES),
            TemplateKind::UpdateSent => {
                all.extend(UPDATE_VARIABLES);
                all.extend(UPDATE_SENT_VARIABLES);
            }
            TemplateKind::AskOwner => {
                all.extend(UPDATE_VARIABLES);
                all.extend(UPDATE_SENT_VARIABLES);
                all.extend(ASK_VARIABLES);
            }
            TemplateKind::Missed => all.extend(MISSED_VARIABLES),
            TemplateKind::Failure => all.extend(FAILURE_VARIABLES),
            TemplateKind::Digest | TemplateKind::Report => {}
        }
        all
    }
}

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
    /// Something the email needs is not there (e.g. the rule lost its recipients).
    #[error("cannot compose the email: {0} is missing")]
    Missing(String),
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
    html: BTreeMap<String, bool>,
    /// The templates not for the on-open email that use `customer.*`.
    customer: std::collections::BTreeSet<String>,
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
    env.add_filter("sentence", sentence);
    if let Err(e) = env.add_template(layout::KEY, layout::SOURCE) {
        tracing::error!(cause = %e, "the shipped HTML layout does not compile");
    }
    env.add_filter("upper_first", upper_first);
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

fn read(path: &Path, errors: &mut Vec<ConfigError>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            errors.push(ConfigError::whole(path, format!("cannot read: {e}")));
            None
        }
    }
}

impl Templates {
    /// Whether a template other than the on-open email's uses `customer.*`: only then
    /// does every step read the customer's commitments (the on-open step always does).
    pub fn customer_everywhere(&self) -> bool {
        !self.customer.is_empty()
    }

    /// Whether the emails of a step of `kind` say something of the customer's other
    /// commitments, so that composing them must read those (a scan of `commitments`).
    pub fn reads_customer(&self, kind: StepKind) -> bool {
        self.customer_everywhere() || kind == StepKind::OnOpen
    }

    /// Only the built-in templates.
    pub fn builtin() -> Templates {
        let mut templates = Templates {
            env: environment(),
            html: BTreeMap::new(),
            customer: Default::default(),
        };
        for builtin in BUILTIN {
            let origin = PathBuf::from(format!("<built-in {}.txt>", builtin.name));
            templates
                .add(
                    builtin.name,
                    builtin.kind,
                    builtin.text,
                    None,
                    &origin,
                    None,
                )
                .expect("built-in templates compile and use only documented variables");
        }
        templates
    }

    /// The built-in templates with overrides from `dir` (which need not exist), plus the
    /// templates that rules name in `wanted`, each of which must exist.
    pub fn load(
        dir: &Path,
        wanted: &[(String, TemplateKind)],
    ) -> Result<Templates, Vec<ConfigError>> {
        let mut templates = Templates::builtin();
        let mut errors = Vec::new();
        let mut kinds: BTreeMap<String, TemplateKind> = BUILTIN
            .iter()
            .map(|b| (b.name.to_string(), b.kind))
            .collect();
        for (name, kind) in wanted {
            match kinds.get(name) {
                Some(existing) if existing != kind => errors.push(ConfigError::whole(
                    dir,
                    format!("template '{name}' is used for two different purposes ({existing:?} and {kind:?})"),
                )),
                _ => {
                    kinds.insert(name.clone(), *kind);
                }
            }
        }
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) if !dir.exists() => Vec::new(),
            Err(e) => return Err(vec![ConfigError::whole(dir, format!("cannot list: {e}"))]),
        };
        files.sort();
        for path in files.iter().filter(|p| p.is_file()) {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
            if ext != "txt" && ext != "html" {
                continue;
            }
            let Some(kind) = kinds.get(stem).copied() else {
                let names: Vec<&str> = kinds.keys().map(String::as_str).collect();
                errors.push(ConfigError::whole(
                    path,
                    format!("unknown template '{stem}': no rule uses it and it is not built in; templates are: {}", names.join(", ")),
                ));
                continue;
            };
            let txt_path = dir.join(format!("{stem}.txt"));
            let html_path = dir.join(format!("{stem}.html"));
            if ext == "html" && txt_path.is_file() {
                continue; // read with its text part
            }
            let builtin = BUILTIN.iter().find(|b| b.name == stem);
            let (text, text_origin) = if ext == "txt" {
                let Some(text) = read(path, &mut errors) else {
                    continue;
                };
                (text, path.clone())
            } else if let Some(builtin) = builtin {
                (
                    builtin.text.to_string(),
                    PathBuf::from(format!("<built-in {stem}.txt>")),
                )
            } else {
                errors.push(ConfigError::whole(
                    path,
                    format!("template '{stem}' has an HTML part but no {stem}.txt"),
                ));
                continue;
            };
            let html = if html_path.is_file() {
                read(&html_path, &mut errors)
            } else {
                None
            };
            if let Err(e) = templates.add(
                stem,
                kind,
                &text,
                html.as_deref(),
                &text_origin,
                Some(&html_path),
            ) {
                errors.extend(e);
            }
        }
        for (name, _) in wanted {
            if !templates.html.contains_key(name) {
                errors.push(ConfigError::whole(
                    dir,
                    format!(
                        "a rule uses template '{name}', which is not built in: add {}",
                        dir.join(format!("{name}.txt")).display()
                    ),
                ));
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
        name: &str,
        kind: TemplateKind,
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
        let allowed = kind.variables();
        self.customer.remove(name);
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
            let used = template.undeclared_variables(true);
            if kind != TemplateKind::OnOpen && used.iter().any(|v| v.starts_with("customer")) {
                self.customer.insert(name.to_string());
            }
            let mut unknown: Vec<String> = used
                .into_iter()
                .filter(|v| !variable_allowed(v, &allowed))
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
        self.html.insert(name.to_string(), html.is_some());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<Rendered, RenderError> {
        let has_html = *self
            .html
            .get(name)
            .ok_or_else(|| RenderError::Unknown(name.to_string()))?;
        let ctx = Value::from(minijinja::value::Serde(context));
        let render = |part: &str| -> Result<String, RenderError> {
            let key = format!("{name}.{part}");
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
        let html = if has_html {
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

fn variable_allowed(variable: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|allowed| {
        *allowed == variable
            || allowed.split('.').next() == Some(variable)
            || variable.starts_with(&format!("{allowed}."))
    })
}

mod filters;
mod layout;
pub use filters::{sentence, upper_first};
pub use layout::paragraphs;

#[cfg(test)]
mod tests;
