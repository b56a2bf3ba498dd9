//! The throwaway PostgreSQL server of `tests/common/postgres.rs`, proved before the store's
//! tests rely on it: databases of their own, and a server that stops and comes back with
//! its data, as the daemon's reconnection tests need.

use crate::common;

use common::postgres::Postgres;
use postgres::{Client, NoTls};

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// Whether the table `name` exists in the database `client` is connected to.
fn has_table(client: &mut Client, name: &str) -> bool {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap();
    row.get(0)
}

#[test]
fn each_database_is_its_own_and_the_data_outlives_a_restart() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    eprintln!("PostgreSQL started in {:?}", server.startup);
    let first = server.create_database("first");
    let second = server.create_database("second");
    assert_ne!(first, second);

    let mut client = connect(&first);
    client
        .batch_execute("CREATE TABLE promises (id bigint PRIMARY KEY, title text NOT NULL)")
        .unwrap();
    client
        .execute(
            "INSERT INTO promises VALUES (1, $1)",
            &[&"Send the quote for the roof"],
        )
        .unwrap();
    assert!(has_table(&mut client, "promises"));
    assert!(
        !has_table(&mut connect(&second), "promises"),
        "a table of the first database shows in the second"
    );
    drop(client);

    server.stop();
    assert!(
        Client::connect(&first, NoTls).is_err(),
        "a connection succeeded to a stopped server"
    );

    server.start_again();
    let mut client = connect(&first);
    let titles: Vec<String> = client
        .query("SELECT title FROM promises", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(titles, ["Send the quote for the roof"]);
}

#[test]
fn the_shared_server_gives_each_test_a_database_of_its_own() {
    let Some(server) = Postgres::shared() else {
        return;
    };
    assert!(std::ptr::eq(server, Postgres::shared().unwrap()));
    let url = server.create_database("shared_server_own_database");
    let mut client = connect(&url);
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(name, "shared_server_own_database");
}
