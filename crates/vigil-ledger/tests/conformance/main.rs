//! The ledger's conformance suite: every case is written once, in `cases` and `tamper`, and
//! run against SQLite and against PostgreSQL (`VIGIL_TEST_DATABASE_URL`).

mod archiving;
mod cases;
mod errors;
mod exporting;
mod fixture;
mod reading;
mod replication;
mod tamper;

/// Declares one `#[tokio::test]` per conformance case, each on a fresh fixture from `$fixture`.
macro_rules! conformance_suite {
    ($fixture:path) => {
        conformance_suite!(@cases $fixture;
            cases::append_read_round_trip,
            cases::empty_ledger,
            cases::reopen_continues_the_chain,
            cases::blobs_are_content_addressed,
            cases::entries_for_incident,
            cases::last_session_at_or_before,
            cases::read_ranges,
            cases::verify_clean_log_of_1000_entries,
            cases::second_writer_conflicts,
            cases::tree_head_follows_appends_and_reopening,
            cases::checkpoints_are_stored_once_per_size_and_heads_come_with_verify,
            cases::open_existing_refuses_a_ledger_that_is_not_there,
            cases::a_reader_reads_beside_the_writer_and_cannot_append,
            reading::pages_are_bounded_by_bytes,
            exporting::the_streamed_export_is_the_export_in_memory_byte_for_byte,
            exporting::a_broken_ledger_is_not_exported,
            exporting::proofs_from_one_pass_over_the_leaves_are_the_recursive_proofs,
            reading::the_entry_reader_yields_each_entry_once_within_its_limits,
            reading::verify_meets_every_checkpoint_at_its_size_a_page_at_a_time,
            reading::verification_does_not_depend_on_page_bounds,
            tamper::a_gap_in_the_leaves_withholds_the_tree_head,
            tamper::a_missing_or_changed_blob_is_named_by_the_entry_that_refers_to_it,
            tamper::sql_tampering_is_detected,
            tamper::forgeries_with_recomputed_hashes_are_detected,
            tamper::tampering_the_tail_is_not_detected_without_a_checkpoint,
            tamper::malformed_rows_are_errors_not_panics,
            archiving::an_archived_prefix_keeps_the_tree_checkpoints_and_proofs,
        );
    };
    (@cases $fixture:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() -> crate::fixture::TestResult {
                let Some(fixture) = $fixture().await? else {
                    return Ok(());
                };
                crate::$module::$case(&fixture).await
            }
        )*
    };
}

mod sqlite {
    conformance_suite!(crate::fixture::Fixture::sqlite);
}

mod postgres {
    conformance_suite!(crate::fixture::Fixture::postgres);
}

/// PostgreSQL only: the lease, the fence and the inbox.
mod replicated {
    conformance_suite!(@cases crate::fixture::Fixture::postgres;
        replication::the_lease_has_one_holder_and_a_growing_epoch,
        replication::the_database_fences_a_deposed_writer,
        replication::a_lease_expires_by_the_database_clock,
        replication::inbox_rows_are_consumed_once_by_the_append,
        replication::the_inbox_bound_counts_the_rows_not_the_ids,
    );
}

/// SQLite only.
mod sqlite_only {
    conformance_suite!(@cases crate::fixture::Fixture::sqlite;
        replication::sqlite_is_not_replicable,
    );
}
