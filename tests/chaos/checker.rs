//! The checker (Jepsen-style): from what the publishers were told (acknowledged ids) and what
//! every subscriber received, in order, it finds every event lost without a gap event, received
//! twice, out of order or stored twice, and every gap event that announced no real loss.

use std::collections::{BTreeSet, HashMap, HashSet};

/// A hub id, `EPOCH-SEQ`: nest-hub's own type, parsed as the hub parses it. Epochs grow with
/// time on both backends, so they order.
pub(crate) use nest::sse::hub::HubId as Id;

/// What a subscriber received, in order.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// A published event: its id and the publisher's key (the message's text).
    Event { id: Id, key: String },
    /// A gap event (`event: reset`): `lagged` (retention) or `unknown-id` (another epoch).
    Gap { reason: String, id: Id },
    /// Something the subscriber could not read as either (a violation by itself).
    Garbled(String),
}

/// What may happen in a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// The topic's retention in events: a `lagged` gap is real only if the topic grew this
    /// much past it.
    pub(crate) retention: u64,
    /// Whether the epoch may change (Redis without its append-only file, in-process restarts).
    pub(crate) epoch_changes: bool,
}

/// The checker's figures.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Acknowledged events.
    pub(crate) acknowledged: usize,
    /// Acknowledged events received, summed over subscribers.
    pub(crate) delivered: usize,
    /// Acknowledged events not received but announced by a gap event, summed over subscribers.
    pub(crate) announced: usize,
    /// Of `announced`, how many after the subscriber's last event of an epoch it was in (the
    /// epoch's tail), by epoch;
    pub(crate) announced_tails: HashMap<u64, usize>,
    /// and how many in epochs the subscriber never received anything of (it had no stream
    /// while they lasted).
    pub(crate) announced_unseen: usize,
    /// Gap events received: `lagged`, `unknown-id`.
    pub(crate) lagged: usize,
    pub(crate) resets: usize,
    /// Epochs the acknowledged ids span.
    pub(crate) epochs: usize,
    pub(crate) violations: Vec<String>,
}

/// Checks a run: `acks` holds each publish's key and the id it was acknowledged with (once per
/// key: a publisher retries until acknowledged, with the same key), `subscribers` what each
/// received.
pub(crate) fn check(acks: &[(String, Id)], subscribers: &[Vec<Seen>], rules: Rules) -> Report {
    let mut report = Report {
        acknowledged: acks.len(),
        ..Report::default()
    };
    let mut violations = Vec::new();

    // Acknowledgements: one id per key, one key per id.
    let mut acked_key: HashMap<Id, &str> = HashMap::new();
    for (key, id) in acks {
        if let Some(other) = acked_key.insert(*id, key) {
            violations.push(format!("{id} acknowledged for {other:?} and {key:?}"));
        }
    }
    let epochs: BTreeSet<u64> = acks.iter().map(|(_, id)| id.epoch()).collect();
    report.epochs = epochs.len();
    if !rules.epoch_changes && epochs.len() > 1 {
        violations.push(format!("the epoch changed: {epochs:?}"));
    }
    // The highest number known in each epoch (acknowledged or received).
    let mut heads: HashMap<u64, u64> = HashMap::new();
    let mut known = |id: Id| {
        let head = heads.entry(id.epoch()).or_default();
        *head = (*head).max(id.seq());
    };
    acks.iter().for_each(|(_, id)| known(*id));

    // Storage: an id names one event; a key is stored once per epoch.
    let mut key_of: HashMap<Id, &str> = HashMap::new();
    let mut ids_of: HashMap<(&str, u64), BTreeSet<u64>> = HashMap::new();
    for seen in subscribers.iter().flatten() {
        if let Seen::Event { id, key } = seen {
            known(*id);
            if let Some(other) = key_of.insert(*id, key) {
                if other != key {
                    violations.push(format!("{id} carried {other:?} and {key:?}"));
                }
            }
            ids_of
                .entry((key, id.epoch()))
                .or_default()
                .insert(id.seq());
        }
    }
    for ((key, epoch), seqs) in &ids_of {
        if seqs.len() > 1 {
            violations.push(format!("{key:?} stored twice in epoch {epoch}: {seqs:?}"));
        }
    }
    for (key, id) in acks {
        if let Some(seqs) = ids_of.get(&(key.as_str(), id.epoch())) {
            if !seqs.contains(&id.seq()) {
                violations.push(format!(
                    "{key:?} acknowledged as {id} but stored as {seqs:?}"
                ));
            }
        }
    }

    for (n, seen) in subscribers.iter().enumerate() {
        let walk = walk(seen, &heads, rules, &mut violations, n);
        report.lagged += walk.lagged.len();
        report.resets += walk.resets.len();
        let Some(start) = walk.start else {
            violations.push(format!("subscriber {n} received nothing"));
            continue;
        };
        let mut lost = Vec::new();
        for (key, id) in acks {
            if walk.received.contains(id) {
                report.delivered += 1;
            } else if *id < start {
                // Published before the subscriber's first event.
            } else if walk.announced(*id) {
                report.announced += 1;
                if walk
                    .resets
                    .iter()
                    .any(|(from, _)| from.epoch() == id.epoch())
                {
                    *report.announced_tails.entry(id.epoch()).or_default() += 1;
                } else {
                    report.announced_unseen += 1;
                }
            } else {
                lost.push(format!("{id} ({key})"));
            }
        }
        if !lost.is_empty() {
            violations.push(format!(
                "subscriber {n} LOST {} acknowledged events without a gap event, e.g. {:?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            ));
        }
    }
    report.violations = violations;
    report
}

/// One subscriber's stream, walked in order.
#[derive(Default)]
struct Walk {
    start: Option<Id>,
    received: HashSet<Id>,
    /// `lagged` gaps: the epoch and the numbers they announced as missed.
    lagged: Vec<(u64, u64, u64)>,
    /// `unknown-id` gaps: where the stream was, and where it went on.
    resets: Vec<(Id, Id)>,
}

impl Walk {
    /// Whether a gap event announced `id` as missed. A reset announces the rest of the epoch
    /// the subscriber was in (and any epoch between), never an event of the epoch it goes on
    /// in: those must all arrive (issue 28), unless retention drops them (a `lagged` gap).
    fn announced(&self, id: Id) -> bool {
        let lagged = self
            .lagged
            .iter()
            .any(|&(epoch, from, to)| epoch == id.epoch() && (from..=to).contains(&id.seq()));
        let reset = self.resets.iter().any(|&(from, to)| {
            (id.epoch() == from.epoch() && id.seq() > from.seq())
                || (from.epoch() < id.epoch() && id.epoch() < to.epoch())
        });
        lagged || reset
    }
}

fn walk(
    seen: &[Seen],
    heads: &HashMap<u64, u64>,
    rules: Rules,
    violations: &mut Vec<String>,
    n: usize,
) -> Walk {
    let mut walk = Walk::default();
    let mut pos: Option<Id> = None;
    for item in seen {
        match item {
            Seen::Event { id, .. } => {
                match pos {
                    None => walk.start = Some(*id),
                    Some(p) if p.epoch() == id.epoch() && id.seq() == p.seq() + 1 => {}
                    Some(p) if p.epoch() != id.epoch() => violations.push(format!(
                        "subscriber {n}: {p} then {id}: the epoch changed without a gap event"
                    )),
                    Some(p) if id.seq() <= p.seq() => violations.push(format!(
                        "subscriber {n}: {p} then {id}: a duplicate or out of order"
                    )),
                    Some(p) => violations.push(format!(
                        "subscriber {n}: {p} then {id}: events skipped without a gap event"
                    )),
                }
                if !walk.received.insert(*id) {
                    violations.push(format!("subscriber {n}: {id} received twice"));
                }
                pos = Some(*id);
            }
            Seen::Gap { reason, id } if reason == "lagged" => {
                let Some(p) = pos.filter(|p| p.epoch() == id.epoch() && p.seq() < id.seq()) else {
                    violations.push(format!(
                        "subscriber {n}: a lagged gap to {id} after {pos:?}"
                    ));
                    continue;
                };
                // Retention dropped `p+1..=id`: the topic reached `id + retention` by then.
                let head = heads.get(&id.epoch()).copied().unwrap_or_default();
                if head < id.seq() + rules.retention {
                    violations.push(format!(
                        "subscriber {n}: a lagged gap to {id}, but the epoch's head is {head} \
                         (retention {}): no real loss",
                        rules.retention
                    ));
                }
                walk.lagged.push((id.epoch(), p.seq() + 1, id.seq()));
                pos = Some(*id);
            }
            Seen::Gap { reason, id } => {
                match pos {
                    Some(p) if p.epoch() != id.epoch() => walk.resets.push((p, *id)),
                    _ => violations.push(format!(
                        "subscriber {n}: a {reason:?} gap to {id} after {pos:?}: no epoch change"
                    )),
                }
                if !rules.epoch_changes {
                    violations.push(format!("subscriber {n}: a {reason:?} gap, epoch kept"));
                }
                pos = Some(*id);
            }
            Seen::Garbled(what) => violations.push(format!("subscriber {n}: {what}")),
        }
    }
    walk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(epoch: u64, seq: u64) -> Id {
        Id::new(epoch, seq)
    }

    fn event(epoch: u64, seq: u64) -> Seen {
        Seen::Event {
            id: id(epoch, seq),
            key: format!("k{epoch}-{seq}"),
        }
    }

    fn acks(ids: &[(u64, u64)]) -> Vec<(String, Id)> {
        ids.iter()
            .map(|&(e, s)| (format!("k{e}-{s}"), id(e, s)))
            .collect()
    }

    const STRICT: Rules = Rules {
        retention: 3,
        epoch_changes: false,
    };

    /// The checker itself fails on each kind of violation (a checker that cannot fail would
    /// prove nothing).
    #[test]
    fn the_checker_finds_each_kind_of_violation() {
        let acked = acks(&[(1, 1), (1, 2), (1, 3)]);
        let clean = check(
            &acked,
            &[vec![event(1, 1), event(1, 2), event(1, 3)]],
            STRICT,
        );
        assert!(clean.violations.is_empty(), "{:?}", clean.violations);
        assert_eq!(clean.delivered, 3);

        let cases: [(&str, Vec<Seen>); 5] = [
            ("LOST", vec![event(1, 1), event(1, 2)]),
            ("skipped", vec![event(1, 1), event(1, 3)]),
            (
                "duplicate",
                vec![event(1, 1), event(1, 2), event(1, 2), event(1, 3)],
            ),
            ("no real loss", {
                let gap = Seen::Gap {
                    reason: "lagged".into(),
                    id: id(1, 2),
                };
                vec![event(1, 1), gap, event(1, 3)]
            }),
            ("epoch kept", {
                let reset = Seen::Gap {
                    reason: "unknown-id".into(),
                    id: id(2, 0),
                };
                vec![event(1, 1), event(1, 2), event(1, 3), reset]
            }),
        ];
        for (expected, seen) in cases {
            let report = check(&acked, &[seen], STRICT);
            assert!(
                report.violations.iter().any(|v| v.contains(expected)),
                "{expected}: {:?}",
                report.violations
            );
        }
        let mut twice = acked.clone();
        twice.push(("k1-2".into(), id(1, 4)));
        let seen = vec![
            event(1, 1),
            event(1, 2),
            event(1, 3),
            Seen::Event {
                id: id(1, 4),
                key: "k1-2".into(),
            },
        ];
        let report = check(&twice, &[seen], STRICT);
        assert!(report.violations.iter().any(|v| v.contains("stored twice")));
    }

    /// A reset to a new epoch announces what the old epoch had after the subscriber's last id;
    /// the new epoch's events must all arrive.
    #[test]
    fn a_reset_announces_the_rest_of_the_old_epoch_only() {
        let rules = Rules {
            retention: 100,
            epoch_changes: true,
        };
        let acked = acks(&[(1, 1), (1, 2), (2, 1), (2, 2)]);
        let reset = Seen::Gap {
            reason: "unknown-id".into(),
            id: id(2, 0),
        };
        let good = vec![event(1, 1), reset, event(2, 1), event(2, 2)];
        let report = check(&acked, &[good], rules);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!((report.delivered, report.announced), (3, 1));
        // The restart defect: the reset resumes at the new epoch's head, skipping what
        // was published there while the client reconnected.
        let at_head = Seen::Gap {
            reason: "unknown-id".into(),
            id: id(2, 1),
        };
        let bad = vec![event(1, 1), at_head, event(2, 2)];
        let report = check(&acked, &[bad], rules);
        assert!(
            report.violations.iter().any(|v| v.contains("LOST")),
            "{:?}",
            report.violations
        );
    }
}
