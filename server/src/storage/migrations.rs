//! Migrations live in `migrations/sqlite` and `migrations/postgres` at the repository root,
//! embedded here so the binary carries them.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Backend, Database, StorageError};

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../../../migrations/sqlite/0001_foundation.sql")),
    (2, "records", include_str!("../../../migrations/sqlite/0002_records.sql")),
    (3, "access", include_str!("../../../migrations/sqlite/0003_access.sql")),
    (4, "api", include_str!("../../../migrations/sqlite/0004_api.sql")),
    (5, "hardening", include_str!("../../../migrations/sqlite/0005_hardening.sql")),
    (6, "cluster", include_str!("../../../migrations/sqlite/0006_cluster.sql")),
    (7, "committed heads", include_str!("../../../migrations/sqlite/0007_committed_heads.sql")),
    (8, "erasure", include_str!("../../../migrations/sqlite/0008_erasure.sql")),
    (9, "retention", include_str!("../../../migrations/sqlite/0009_retention.sql")),
    (10, "device storage keys", include_str!("../../../migrations/sqlite/0010_device_storage_keys.sql")),
    (11, "learning loops", include_str!("../../../migrations/sqlite/0011_learning_loops.sql")),
    (12, "champions", include_str!("../../../migrations/sqlite/0012_champions.sql")),
    (13, "resources", include_str!("../../../migrations/sqlite/0013_resources.sql")),
    (14, "scim", include_str!("../../../migrations/sqlite/0014_scim.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../../../migrations/postgres/0001_foundation.sql")),
    (2, "records", include_str!("../../../migrations/postgres/0002_records.sql")),
    (3, "access", include_str!("../../../migrations/postgres/0003_access.sql")),
    (4, "api", include_str!("../../../migrations/postgres/0004_api.sql")),
    (5, "hardening", include_str!("../../../migrations/postgres/0005_hardening.sql")),
    (6, "cluster", include_str!("../../../migrations/postgres/0006_cluster.sql")),
    (7, "committed heads", include_str!("../../../migrations/postgres/0007_committed_heads.sql")),
    (8, "erasure", include_str!("../../../migrations/postgres/0008_erasure.sql")),
    (9, "retention", include_str!("../../../migrations/postgres/0009_retention.sql")),
    (10, "device storage keys", include_str!("../../../migrations/postgres/0010_device_storage_keys.sql")),
    (11, "learning loops", include_str!("../../../migrations/postgres/0011_learning_loops.sql")),
    (12, "champions", include_str!("../../../migrations/postgres/0012_champions.sql")),
    (13, "resources", include_str!("../../../migrations/postgres/0013_resources.sql")),
    (14, "scim", include_str!("../../../migrations/postgres/0014_scim.sql")),
];

pub(super) async fn run(db: &Database) -> Result<(), StorageError> {
    let files = match db.backend() {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let migrations = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    // Migrator takes a lock on PostgreSQL, so several nodes starting at once is safe.
    Migrator::with_migrations(migrations).run(db.pool()).await?;
    Ok(())
}
