//! Rebuilds the crate when a migration changes, so that `sqlx::migrate!` embeds the current SQL.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
