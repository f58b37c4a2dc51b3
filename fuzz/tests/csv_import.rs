//! The CSV import (`fieldbook users import`, `POST /v1/admin/import`) on a real database:
//! any file is imported whole or refused whole with its problems listed, never a panic.

use fieldbook_fuzz::{client_text, fuzz};
use fieldbook_server::org::{self, CSV_COLUMNS, ImportError, Operator};
use fieldbook_server::storage::Database;
use proptest::prelude::*;

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        client_text(),
        Just("practitioner".to_owned()),
        Just("supervisor".to_owned()),
        Just("active".to_owned()),
        Just("2026-09-01".to_owned()),
        "(u|t)[0-9]",
        Just("\"quoted, with a comma\"".to_owned()),
        Just("\"a \"\"quote\"\" inside\"".to_owned()),
        Just("\"unterminated".to_owned()),
        Just("line\nbreak".to_owned()),
    ]
}

fn csv() -> impl Strategy<Value = String> {
    let header = proptest::collection::vec(
        prop_oneof![(0..CSV_COLUMNS.len()).prop_map(|i| CSV_COLUMNS[i].to_owned()), client_text()],
        0..8,
    );
    let rows = proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..8);
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("")];
    (header, rows, ending).prop_map(|(mut header, rows, ending)| {
        // Usually a workable header, so rows are checked too.
        if header.len() < 3 {
            header.splice(0..0, ["id", "name", "role"].map(str::to_owned));
        }
        let mut text = header.join(",");
        for row in rows {
            text.push('\n');
            text.push_str(&row.join(","));
        }
        text.push_str(ending);
        text
    })
}

#[test]
fn any_file_is_imported_whole_or_refused_whole() {
    let dir = std::env::temp_dir().join(format!("fieldbook-fuzz-csv-{}", uuid::Uuid::new_v4().simple()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("sqlite:{}", dir.join("fuzz.sqlite").display());
    let db = runtime.block_on(Database::connect(&url)).expect("database");
    fuzz("CSV import", 15_000, csv(), |text| {
        let users_before = runtime.block_on(db.users()).unwrap().len();
        match runtime.block_on(org::import(&db, Operator::CommandLine, &text)) {
            Ok(_) => {}
            Err(ImportError::Invalid(problems)) => {
                prop_assert!(!problems.is_empty(), "refused without saying why");
                let users_after = runtime.block_on(db.users()).unwrap().len();
                prop_assert_eq!(users_before, users_after, "a refused file changed who exists");
            }
            Err(ImportError::Storage(e)) => prop_assert!(false, "the database failed on {:?}: {}", text, e),
        }
        Ok(())
    });
    runtime.block_on(db.close());
    let _ = std::fs::remove_dir_all(dir);
}
