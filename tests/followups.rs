//! The verbs of the follow-ups a service business runs: the promise in the customer's
//! words, closing a commitment with its outcome, waiting on the customer and resuming.
//! Real binary, real SQLite file.

mod common;

use common::Env;

/// Updates the customer: its commitments' customer mail says the promise, else the title.
const MAILS_CUSTOMER: &str = r#"[[rule]]
name = "orders"
match = { kind = "order-info" }
customer_update = { at = "-1h", extend_by = "1d", max = 1 }

[[rule]]
name = "internal"
remind = ["-1h"]
"#;

/// The stderr of a command that succeeded.
fn stderr_ok(env: &Env, args: &[&str]) -> (String, String) {
    let out = env.cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "followup {args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn add_args<'a>(title: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "add",
        "--title",
        title,
        "--owner",
        "Ana Ruiz <ana@example.com>",
        "--customer",
        "Joe Mensah <joe@example.org>",
        "--due",
        "+2d",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_promise_is_recorded_shown_edited_and_carried_through_csv() {
    let env = Env::new(MAILS_CUSTOMER);
    let (out, warned) = stderr_ok(
        &env,
        &add_args(
            "Tell Joe when his pump arrives",
            &[
                "--kind",
                "order-info",
                "--promise",
                "information on your order 1234",
            ],
        ),
    );
    let kept: i64 = out.trim().parse().unwrap();
    assert!(!warned.contains("promise"), "{warned}");
    let shown = env.cli_ok(&["show", &kept.to_string()]);
    assert!(
        shown.contains("promise:  information on your order 1234"),
        "{shown}"
    );
    assert_eq!(
        env.show(kept)["commitment"]["promise"],
        "information on your order 1234"
    );

    // Without one, under a rule that mails the customer: a warning naming the rule and
    // the commitment, and `show` marks it.
    let (out, warned) = stderr_ok(
        &env,
        &add_args("Pump for Mr Mensah", &["--kind", "order-info"]),
    );
    let bare: i64 = out.trim().parse().unwrap();
    assert!(
        warned.contains(&format!(
            "commitment {bare} ('Pump for Mr Mensah') has no promise"
        )) && warned.contains("the rule 'orders' mails the customer"),
        "{warned}"
    );
    let shown = env.cli_ok(&["show", &bare.to_string()]);
    assert!(
        shown.contains("promise:  none (customer mail uses the title)"),
        "{shown}"
    );
    // A rule that writes only to the owner needs no promise.
    let (_, warned) = stderr_ok(&env, &add_args("Order the valve", &[]));
    assert!(!warned.contains("promise"), "{warned}");

    // Edited: a revision, and the mark is gone.
    let edited = env.cli_ok(&["edit", &bare.to_string(), "--promise", "news of your pump"]);
    assert!(
        edited.contains("promise: (none) -> 'news of your pump'"),
        "{edited}"
    );
    let shown = env.show(bare);
    assert_eq!(shown["commitment"]["promise"], "news of your pump");
    assert_eq!(shown["promise_missing"], false);
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.last().unwrap()["changes"][0]["field"], "promise");

    // Export has the column; import reads it back, and warns for a line without one.
    let exported = env.cli_ok(&["export"]);
    let header = exported.lines().next().unwrap();
    assert!(header.split(',').any(|c| c == "promise"), "{header}");
    assert!(
        exported.contains("information on your order 1234"),
        "{exported}"
    );
    let csv = env.root.path().join("in.csv");
    std::fs::write(
        &csv,
        "title,owner,customer,due,kind,promise\n\
         Boiler parts,ana@example.com,joe@example.org,+3d,order-info,news of your boiler parts\n\
         Valve for Joe,ana@example.com,joe@example.org,+3d,order-info,\n",
    )
    .unwrap();
    let (out, warned) = stderr_ok(&env, &["import", csv.to_str().unwrap()]);
    assert!(out.contains("imported 2 commitments"), "{out}");
    assert!(
        warned.contains("in.csv:3: warning: line 3 ('Valve for Joe') has no promise")
            && warned.contains("'orders'"),
        "{warned}"
    );
    assert!(!warned.contains("in.csv:2:"), "{warned}");
    let promises: Vec<Option<String>> = env
        .db()
        .prepare("SELECT promise FROM commitments WHERE title IN ('Boiler parts', 'Valve for Joe') ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        promises,
        vec![Some("news of your boiler parts".to_string()), None]
    );
}
