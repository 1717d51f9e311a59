//! Reading the ledger back as vigil's records: the one reader that replay, recovery and the
//! trust tally use.
//!
//! Entries are read a page at a time, so that memory follows the largest entry, not the
//! ledger. A session chain (a session and the sessions that resumed it after a crash) is
//! read by [`ChainEntries`], which stops at the next session that starts afresh.
//!
//! [`ChainEntries`] also opens every batch of scrapes (`scrape_batch.rs`) into its scrapes,
//! one event at a time, each with its batch's seq and its own time: replay, recovery and a
//! standby meet the events the engine met, whichever way they were recorded.

use anyhow::Context as _;
use vigil_core::scrape_codec::BatchDecoder;
use vigil_ledger::{Entry, EntryKind, Ledger};

use super::records::{CommandRecord, EventRecord, SessionRecord, session_of};
use super::scrape_batch::{self, DictionaryCache, ScrapeBatchRecord};

/// Entries read per page.
const PAGE_ROWS: u32 = 5_000;

/// The ledger's entries in order, from a seq to another (both included), a page at a time.
pub struct Entries<'ledger> {
    ledger: &'ledger Ledger,
    from: u64,
    until: u64,
    page: std::vec::IntoIter<Entry>,
}

impl<'ledger> Entries<'ledger> {
    /// The entries from seq `from` to seq `until` (both included; `u64::MAX` for the end).
    #[must_use]
    pub fn new(ledger: &'ledger Ledger, from: u64, until: u64) -> Entries<'ledger> {
        Entries {
            ledger,
            from,
            until,
            page: Vec::new().into_iter(),
        }
    }

    /// The next entry, or `None` past `until` or at the end of the ledger.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be read.
    pub async fn next(&mut self) -> anyhow::Result<Option<Entry>> {
        if let Some(entry) = self.page.next() {
            return Ok(Some(entry).filter(|entry| entry.seq <= self.until));
        }
        if self.from > self.until {
            return Ok(None);
        }
        // Never past `until`, so that a reader whose `until` grows misses nothing.
        let rows = u32::try_from(self.until - self.from)
            .map_or(PAGE_ROWS, |left| left.saturating_add(1).min(PAGE_ROWS));
        let page = self.ledger.read(self.from, rows).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.from = last.seq + 1;
        self.page = page.into_iter();
        Ok(self.page.next().filter(|entry| entry.seq <= self.until))
    }

    /// Reads on up to seq `until` (a reader that follows a ledger others append to).
    pub fn extend_until(&mut self, until: u64) {
        self.until = self.until.max(until);
    }

    /// The seq of the next entry to read.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.page
            .as_slice()
            .first()
            .map_or(self.from, |entry| entry.seq)
    }
}

/// An entry's payload, decoded by its kind.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// A session started, reloaded its policies or ended.
    Session(SessionRecord),
    /// An event handed to the engine.
    Event(EventRecord),
    /// Scrapes handed to the engine, recorded together ([`ChainEntries`] opens them).
    ScrapeBatch(Box<ScrapeBatchRecord>),
    /// A command the engine issued.
    Command(CommandRecord),
}

/// Decodes an entry's payload.
///
/// # Errors
///
/// When the payload is not the record its kind says, naming the entry.
pub fn decode(entry: &Entry) -> anyhow::Result<Recorded> {
    Ok(match entry.kind {
        EntryKind::Session => Recorded::Session(session_of(entry)?),
        EntryKind::Event if scrape_batch::is_batch_payload(&entry.payload) => {
            Recorded::ScrapeBatch(Box::new(
                serde_json::from_str(&entry.payload)
                    .with_context(|| format!("entry {}: unreadable scrape batch", entry.seq))?,
            ))
        }
        EntryKind::Event => Recorded::Event(
            serde_json::from_str(&entry.payload)
                .with_context(|| format!("entry {}: unreadable event", entry.seq))?,
        ),
        EntryKind::Command => Recorded::Command(
            serde_json::from_str(&entry.payload)
                .with_context(|| format!("entry {}: unreadable command", entry.seq))?,
        ),
    })
}

/// The entries of one session chain, decoded, from the entry after its origin (a session
/// start) up to an entry (included) or to the next session that does not resume it. Session
/// ends, policy reloads and the starts of sessions that resumed the chain are part of it.
///
/// A batch of scrapes comes out as one [`Recorded::Event`] per scrape, in order, each with
/// a copy of the batch's entry whose `at_ms` is the scrape's own and whose payload is left
/// empty (the batch's payload is one text for all of them).
pub struct ChainEntries<'ledger> {
    entries: Entries<'ledger>,
    /// Set at the next session that starts afresh.
    ended: bool,
    /// The batch being opened, with its entry (payload emptied).
    batch: Option<(Entry, BatchDecoder)>,
    /// The series dictionary of the last batch.
    dictionaries: DictionaryCache,
}

impl<'ledger> ChainEntries<'ledger> {
    /// The chain that starts at `origin`, read up to seq `until`.
    #[must_use]
    pub fn new(ledger: &'ledger Ledger, origin: &Entry, until: u64) -> ChainEntries<'ledger> {
        ChainEntries {
            entries: Entries::new(ledger, origin.seq + 1, until),
            ended: false,
            batch: None,
            dictionaries: DictionaryCache::default(),
        }
    }

    /// Reads on up to seq `until` (see [`Entries::extend_until`]).
    pub fn extend_until(&mut self, until: u64) {
        self.entries.extend_until(until);
    }

    /// Whether the chain ended at a session that starts afresh (reading on gives nothing).
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The chain's next entry with its record, or `None` at its end.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be read or an entry cannot be decoded.
    pub async fn next(&mut self) -> anyhow::Result<Option<(Entry, Recorded)>> {
        // Bounded: a batch yields at least one scrape or ends (then the next entry is read).
        loop {
            if let Some(opened) = self.next_scrape()? {
                return Ok(Some(opened));
            }
            if self.ended {
                return Ok(None);
            }
            let Some(mut entry) = self.entries.next().await? else {
                return Ok(None);
            };
            let recorded = decode(&entry)?;
            match recorded {
                Recorded::Session(SessionRecord::SessionStarted { resumes: None, .. }) => {
                    self.ended = true;
                    return Ok(None);
                }
                Recorded::ScrapeBatch(record) => {
                    let decoder = scrape_batch::open_batch(
                        self.entries.ledger,
                        &entry,
                        &record,
                        &mut self.dictionaries,
                    )
                    .await?;
                    entry.payload = String::new();
                    self.batch = Some((entry, decoder));
                }
                recorded => return Ok(Some((entry, recorded))),
            }
        }
    }

    /// The next scrape of the batch being opened, if any.
    fn next_scrape(&mut self) -> anyhow::Result<Option<(Entry, Recorded)>> {
        let Some((entry, decoder)) = &mut self.batch else {
            return Ok(None);
        };
        let Some(decoded) = decoder.next() else {
            self.batch = None;
            return Ok(None);
        };
        let scrape =
            decoded.with_context(|| format!("entry {}: a damaged scrape batch", entry.seq))?;
        let mut scrape_entry = entry.clone();
        scrape_entry.at_ms = scrape.at_ms;
        let record = EventRecord {
            event: scrape_batch::scrape_event(scrape),
            exchanges_blob: None,
        };
        Ok(Some((scrape_entry, Recorded::Event(record))))
    }
}

/// The first session start from seq `from` on that does not resume an earlier session: the
/// origin of the next session chain.
///
/// # Errors
///
/// When the ledger cannot be read or a session entry cannot be decoded.
pub async fn next_origin(ledger: &Ledger, from: u64) -> anyhow::Result<Option<Entry>> {
    let mut entries = Entries::new(ledger, from, u64::MAX);
    while let Some(entry) = entries.next().await? {
        if entry.kind == EntryKind::Session
            && let SessionRecord::SessionStarted { resumes: None, .. } = session_of(&entry)?
        {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use vigil_core::engine::Event;

    use super::{ChainEntries, Recorded, next_origin};
    use crate::journal::{SessionRecord, event_entry, session_entry};

    #[tokio::test]
    async fn a_chain_runs_through_the_sessions_that_resumed_it_and_stops_at_a_fresh_one() {
        let (path, mut ledger, started) = crate::journal::test_ledger("reader").await;
        let SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            config_blob,
            runbooks_blob,
            policies_blob,
            ..
        } = started.clone()
        else {
            panic!("not a session start");
        };
        let resuming = SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            config_blob,
            runbooks_blob,
            policies_blob,
            resumes: Some(0),
            scrape_batch: None,
        };
        let ended = SessionRecord::SessionEnded {
            reason: "test".to_owned(),
            interrupted: vec!["act-1".to_owned()],
        };
        let entries = vec![
            session_entry(&started, 0).unwrap(),
            event_entry(&Event::Tick, 1, None).unwrap(),
            session_entry(&ended, 2).unwrap(),
            session_entry(&resuming, 3).unwrap(),
            event_entry(&Event::Tick, 4, None).unwrap(),
            session_entry(&started, 5).unwrap(),
            event_entry(&Event::Tick, 6, None).unwrap(),
        ];
        let appended = ledger.append(&entries).await.unwrap();
        let origin = appended[0].clone();

        let mut chain = ChainEntries::new(&ledger, &origin, u64::MAX);
        let mut seen = Vec::new();
        while let Some((entry, recorded)) = chain.next().await.unwrap() {
            seen.push((entry.seq, matches!(recorded, Recorded::Event(_))));
        }
        assert_eq!(
            seen,
            [(1, true), (2, false), (3, false), (4, true)],
            "the chain holds the resumed session and stops before the fresh one"
        );
        assert!(chain.next().await.unwrap().is_none(), "and stays ended");

        let mut chain = ChainEntries::new(&ledger, &origin, 2);
        let mut seen = Vec::new();
        while let Some((entry, _)) = chain.next().await.unwrap() {
            seen.push(entry.seq);
        }
        assert_eq!(seen, [1, 2], "read up to the entry asked for");

        assert_eq!(
            next_origin(&ledger, 1).await.unwrap().map(|e| e.seq),
            Some(5)
        );
        assert_eq!(next_origin(&ledger, 6).await.unwrap().map(|e| e.seq), None);
        ledger.close().await;
        crate::journal::remove_sqlite_ledger(&path).unwrap();
    }
}
