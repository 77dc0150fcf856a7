//! What a transaction changed, held until it commits and then told as change events (see
//! `sql/17_realtime.sql`). The queue remembers in which subtransaction each change was made, so a
//! savepoint rolled back takes its changes with it; `events` turns what is left into events for
//! NOTIFY: per project, the ids of each kind, in parts small enough for its payload limit.

use super::savepoints::BySubtransaction;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Bytes of ids in one event, at most. NOTIFY takes 8,000 bytes; the envelope (kind, part,
/// project, time, signature) and the kinds' names need well under 1,000.
pub const PART_BYTES: usize = 7000;

/// More ids than this for one project (an import's chunk) become one event of counts: a screen
/// reloads, where hundreds of parts would be worth nothing.
pub const RELOAD_OVER: usize = 5000;

struct Change {
    project_id: i64,
    kind: String,
    ids: Vec<i64>,
}

/// The changes of the running transaction.
#[derive(Default)]
pub struct ChangeQueue {
    changes: BySubtransaction<Change>,
}

impl ChangeQueue {
    /// Records `ids` of `kind` changed in project `project_id` by subtransaction `subtransaction`.
    pub fn push(&mut self, subtransaction: u32, project_id: i64, kind: &str, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        // A row trigger pushes one id at a time: the rows of one statement join one change.
        if let Some(last) = self.changes.last_of(subtransaction) {
            if last.project_id == project_id && last.kind == kind {
                last.ids.extend(ids);
                return;
            }
        }
        self.changes.push(
            subtransaction,
            Change {
                project_id,
                kind: kind.to_string(),
                ids,
            },
        );
    }

    /// Forgets what subtransaction `subtransaction` and the ones inside it changed (it rolled
    /// back).
    pub fn roll_back(&mut self, subtransaction: u32) {
        self.changes.roll_back(subtransaction);
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn clear(&mut self) {
        self.changes.clear();
    }

    /// Each project's distinct ids per kind.
    pub fn by_project(&self) -> BTreeMap<i64, BTreeMap<String, BTreeSet<i64>>> {
        let mut projects: BTreeMap<i64, BTreeMap<String, BTreeSet<i64>>> = BTreeMap::new();
        for change in self.changes.iter() {
            projects
                .entry(change.project_id)
                .or_default()
                .entry(change.kind.clone())
                .or_default()
                .extend(change.ids.iter().copied());
        }
        projects
    }

    /// The events to send, per project in order.
    pub fn events(&self) -> Vec<(i64, Value)> {
        self.by_project()
            .into_iter()
            .flat_map(|(project_id, kinds)| {
                project_events(&kinds)
                    .into_iter()
                    .map(move |event| (project_id, event))
            })
            .collect()
    }
}

/// One project's events: parts of at most `PART_BYTES` bytes of ids (an id costs its digits and
/// the ", " that follows it in a JSON array as PostgreSQL writes it), or one event of counts.
pub fn project_events(kinds: &BTreeMap<String, BTreeSet<i64>>) -> Vec<Value> {
    let total: usize = kinds.values().map(BTreeSet::len).sum();
    if total > RELOAD_OVER {
        let counts: Map<String, Value> = kinds
            .iter()
            .map(|(kind, ids)| (kind.clone(), json!(ids.len())))
            .collect();
        return vec![json!({"kind": "changes", "reload": true, "counts": counts})];
    }
    let mut parts: Vec<BTreeMap<&str, Vec<i64>>> = vec![BTreeMap::new()];
    let mut bytes = 0;
    for (kind, ids) in kinds {
        for &id in ids {
            let cost = id.to_string().len() + 2;
            if bytes + cost > PART_BYTES {
                parts.push(BTreeMap::new());
                bytes = 0;
            }
            bytes += cost;
            if let Some(part) = parts.last_mut() {
                part.entry(kind.as_str()).or_default().push(id);
            }
        }
    }
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, changes)| json!({"kind": "changes", "changes": changes, "part": i + 1, "parts": count}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_is_one_event_with_its_ids_sorted_once() {
        let mut queue = ChangeQueue::default();
        queue.push(1, 7, "milestones", vec![30, 10, 20, 10]);
        assert_eq!(
            queue.events(),
            [(
                7,
                json!({"kind": "changes", "changes": {"milestones": [10, 20, 30]}, "part": 1, "parts": 1})
            )]
        );
    }

    #[test]
    fn kinds_and_projects_are_gathered_per_project() {
        let mut queue = ChangeQueue::default();
        queue.push(1, 2, "welds", vec![5]);
        queue.push(1, 1, "milestones", vec![4]);
        queue.push(1, 2, "milestones", vec![5, 6]);
        let events = queue.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0, 1);
        assert_eq!(
            events[1].1["changes"],
            json!({"milestones": [5, 6], "welds": [5]})
        );
    }

    #[test]
    fn a_rolled_back_savepoint_takes_its_changes_and_its_inner_ones() {
        let mut queue = ChangeQueue::default();
        queue.push(1, 1, "milestones", vec![1]);
        queue.push(2, 1, "milestones", vec![2]);
        queue.push(3, 1, "welds", vec![3]);
        queue.roll_back(2);
        assert_eq!(queue.events()[0].1["changes"], json!({"milestones": [1]}));
        queue.roll_back(1);
        assert!(queue.is_empty() && queue.events().is_empty());
    }

    #[test]
    fn parts_stay_under_the_payload_limit_and_carry_every_id_once() {
        let mut queue = ChangeQueue::default();
        queue.push(1, 1, "milestones", (1_000_000..1_002_500).collect());
        queue.push(1, 1, "welds", (2_000_000..2_000_500).collect());
        let events = queue.events();
        assert!(events.len() > 1);
        let mut seen = 0;
        for (i, (_, event)) in events.iter().enumerate() {
            assert_eq!(event["part"], i + 1);
            assert_eq!(event["parts"], events.len());
            // As PostgreSQL's jsonb prints it: ", " between items, ": " after keys.
            let printed = event.to_string().replace(',', ", ").replace(':', ": ");
            assert!(printed.len() < 7300, "{}", printed.len());
            seen += event["changes"]
                .as_object()
                .map(|kinds| {
                    kinds
                        .values()
                        .filter_map(Value::as_array)
                        .map(Vec::len)
                        .sum::<usize>()
                })
                .unwrap_or(0);
        }
        assert_eq!(seen, 3000);
    }

    #[test]
    fn a_flood_becomes_one_event_of_counts() {
        let mut queue = ChangeQueue::default();
        queue.push(1, 1, "imports", vec![9]);
        queue.push(1, 1, "milestones", (1..=6000).collect());
        assert_eq!(
            queue.events(),
            [(
                1,
                json!({"kind": "changes", "reload": true, "counts": {"imports": 1, "milestones": 6000}})
            )]
        );
    }
}
