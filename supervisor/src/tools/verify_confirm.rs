//! The confirmation of one record by the kernel's facts: the process it
//! names exists (or existed a moment ago) with that comm and uid, and a
//! successful exec is one the kernel saw and no other record claimed.

use parsers::{Event, EventKind, Record, Value, fields as f};

use super::{
    CACHE_MAX, CACHE_NS, CLAIMS, Checker, EXEC_WINDOW_NS, Facts, NEWLINE_WINDOW_NS, Reject,
};

impl Checker {
    pub(super) fn verify_all(&self, recs: &[Record]) -> Result<Vec<(u32, u64)>, Reject> {
        let mut claims = Vec::new();
        for ev in recs.iter().filter_map(Record::as_event) {
            if let Some(c) = self.verify(ev, &claims)? {
                claims.push(c);
            }
        }
        Ok(claims)
    }

    pub(super) fn claim(&mut self, claims: Vec<(u32, u64)>) {
        for c in claims {
            if self.claims.insert(c) {
                self.claim_order.push_back(c);
            }
            if self.claim_order.len() > CLAIMS
                && let Some(old) = self.claim_order.pop_front()
            {
                self.claims.remove(&old);
            }
        }
    }

    /// Whether the kernel confirms the process `ev` names; the exec it
    /// claims, if any.
    fn verify(&self, ev: &Event, pending: &[(u32, u64)]) -> Result<Option<(u32, u64)>, Reject> {
        let Some(pid) = ev.pid else {
            return Ok(None);
        };
        let comm = ev.comm.as_deref();
        if pid == 0 {
            // The idle tasks (`swapper/N`) have no /proc entry.
            return match comm {
                None => Ok(None),
                Some(c) if c.starts_with("swapper/") => Ok(None),
                Some(_) => Err(Reject::CommMismatch),
            };
        }
        // What the kernel said of this pid a moment ago confirms most records
        // of a busy process without asking again (a map lookup is a system
        // call); a record it does not confirm asks afresh. Where newlines are
        // counted, the count must be fresh.
        let now = crate::host::monotonic_ns();
        if self.family.is_none()
            && let Some((at, facts)) = self.cache.borrow().get(&pid)
            && now.saturating_sub(*at) < CACHE_NS
            && let Ok(ok) = self.check(ev, pid, facts, pending)
        {
            return Ok(ok);
        }
        let recorded = self.facts.recorded(pid);
        if let Some(facts) = &recorded {
            self.remember(pid, now, facts);
        }
        let counted = recorded.as_ref().zip(self.family);
        let recent = |f: &Facts| {
            crate::host::monotonic_ns().saturating_sub(f.newline_ns) < NEWLINE_WINDOW_NS
        };
        self.last_newlines.set(counted.map_or(0, |(f, family)| {
            if recent(f) {
                f.newlines[family as usize]
            } else {
                0
            }
        }));
        let first = match &recorded {
            Some(facts) => self.check(ev, pid, facts, pending),
            None => Err(Reject::UnknownPid),
        };
        if first.is_ok() {
            return first;
        }
        // Not what the kernel recorded (or not recorded): a live process may
        // have been renamed by a thread, changed uid, or predate the agent.
        let Some(live) = self.facts.live(pid) else {
            return first;
        };
        let ok = self.check(ev, pid, &live, pending);
        if ok.is_ok() {
            // /proc is the costly question (a process older than the agent
            // asks it for every record): its answer is kept as long.
            self.remember(pid, now, &live);
        }
        ok.or(first)
    }

    /// Keeps what was learnt of `pid` for [`CACHE_NS`], where newlines are
    /// not counted (a count must always be fresh).
    fn remember(&self, pid: u32, now: u64, facts: &Facts) {
        if self.family.is_some() {
            return;
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_MAX {
            // only the last 200 ms are of use: a few hundred entries
            cache.retain(|_, (at, _)| now.saturating_sub(*at) < CACHE_NS);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(pid, (now, facts.clone()));
    }

    /// Whether `facts` confirm `ev`; the exec it claims, if any.
    fn check(
        &self,
        ev: &Event,
        pid: u32,
        facts: &Facts,
        pending: &[(u32, u64)],
    ) -> Result<Option<(u32, u64)>, Reject> {
        if let Some(uid) = ev.uid
            && !facts.uids.contains(&uid)
        {
            return Err(Reject::UidMismatch);
        }
        let comm = ev.comm.as_deref();
        let exec_ok = ev.kind == EventKind::Exec
            && ev.field(f::RET).and_then(Value::as_int) == Some(0)
            && facts.execs_known;
        if exec_ok {
            return self.exec_claim(pid, comm, facts, pending).map(Some);
        }
        match comm {
            Some(c) if !facts.comms.iter().any(|k| k == c) => Err(Reject::CommMismatch),
            _ => Ok(None),
        }
    }

    /// The recent, unclaimed exec of `pid` with this `comm`.
    fn exec_claim(
        &self,
        pid: u32,
        comm: Option<&str>,
        facts: &Facts,
        pending: &[(u32, u64)],
    ) -> Result<(u32, u64), Reject> {
        let now = crate::host::monotonic_ns();
        let mut recent = facts
            .execs
            .iter()
            .filter(|(ns, _)| now.saturating_sub(*ns) < EXEC_WINDOW_NS)
            .peekable();
        if recent.peek().is_none() {
            return Err(Reject::NoExec);
        }
        let mut reason = Reject::CommMismatch;
        for (ns, c) in recent {
            if comm.is_some_and(|p| p != c) {
                continue;
            }
            let claim = (pid, *ns);
            if self.claims.contains(&claim) || pending.contains(&claim) {
                reason = Reject::ExecClaimed;
                continue;
            }
            return Ok(claim);
        }
        Err(reason)
    }
}
