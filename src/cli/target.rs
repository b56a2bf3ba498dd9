//! Which commitment a verb acts on: its id, or `--ref` with the id another system (a
//! CRM) gave it, so people can use the number they already have.

use anyhow::bail;
use clap::Args;

use crate::store::Store;

/// The commitment a verb acts on, named by id or by external reference.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Commitment id.
    #[arg(value_name = "ID")]
    pub id: Option<i64>,
    /// The commitment's id in another system (as given to `add --ref`), instead of ID.
    #[arg(long = "ref", value_name = "EXTERNAL_ID")]
    pub external_ref: Option<String>,
}

impl Target {
    /// For a verb that takes `ID TEXT` or `--ref EXTERNAL_ID TEXT` (clap cannot have an
    /// optional positional before a required one): splits `words` into the target and
    /// the text.
    pub fn before_text(
        external_ref: Option<String>,
        mut words: Vec<String>,
    ) -> anyhow::Result<(Target, String)> {
        let text = words.pop().unwrap_or_default();
        let id = match (words.pop(), &external_ref) {
            (None, Some(_)) => None,
            (None, None) => {
                bail!("give the commitment's ID (or --ref EXTERNAL_ID) before the text")
            }
            (Some(_), Some(_)) => bail!("give the commitment's ID or --ref EXTERNAL_ID, not both"),
            (Some(id), None) => Some(id.trim().parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "'{id}' is not a commitment id (a number; or use --ref EXTERNAL_ID)"
                )
            })?),
        };
        Ok((Target { id, external_ref }, text))
    }

    /// The commitment's id. An unknown reference, or one that several commitments
    /// share, is an error that says what to do; an unknown id is left to the verb,
    /// which reports it as it always has.
    pub fn resolve(&self, store: &dyn Store) -> anyhow::Result<i64> {
        match (self.id, self.external_ref.as_deref()) {
            (Some(id), _) => Ok(id),
            (None, Some(reference)) => by_ref(store, reference),
            (None, None) => bail!("name the commitment: give its ID or --ref EXTERNAL_ID"),
        }
    }
}

fn by_ref(store: &dyn Store, reference: &str) -> anyhow::Result<i64> {
    let reference = reference.trim();
    if reference.is_empty() {
        bail!("--ref is empty: give the id the commitment has in the other system");
    }
    match store.ids_with_ref(reference)?[..] {
        [] => {
            bail!("no commitment has --ref '{reference}' (`followup export` lists every reference)")
        }
        [id] => Ok(id),
        ref ids => {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            bail!(
                "--ref '{reference}' is shared by commitments {}: give the ID instead",
                ids.join(", ")
            )
        }
    }
}
