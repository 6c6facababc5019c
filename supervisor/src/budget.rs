//! `[agent] cpu_budget`: the most of the machine the agent may cost, held
//! against what it measures of itself ([`crate::overhead`]: its process,
//! its tools' processes and their BPF programs).
//!
//! When the cost stays above the budget for [`SUSTAIN`] intervals in a row,
//! the agent degrades one step, in this order:
//! 1. the HTTP capture paused, when it runs (the agent's own share of the
//!    cost at that moment is taken as what the pause saves);
//! 2. syscall counting from exact to sampled (when it counts exactly; the
//!    HTTP capture runs in the syscall probe, so only once it is paused);
//! 3. the costliest running tool stopped; then the next costliest, one per
//!    [`SUSTAIN`] intervals, while the cost stays above.
//!
//! Every step is logged (a warning naming the cost, the budget and what was
//! done), counted in `eunomia_budget_actions_total{action, target}` and
//! shown in `eunomia_budget_degraded_steps`. When the cost plus what the
//! last step saved stays under [`RECOVER_BELOW`] of the budget for
//! [`SUSTAIN`] intervals, that step is undone (the tool started again,
//! exact counting again), the last step first.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{
    context::AgentContext,
    hotpath::{SAMPLED_FRACTION, SyscallCounting, poller::SyscallControl},
    http::pause::HttpPause,
    overhead::Overhead,
    selfmetrics::Registry,
    tools::{RunnerOptions, Supervisor},
};

/// Intervals in a row the cost must stay above (or under) before a step.
pub(crate) const SUSTAIN: u32 = 3;
/// A step is undone when the cost with it undone would be under this
/// share of the budget.
pub(crate) const RECOVER_BELOW: f64 = 0.8;

/// One degradation step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// The HTTP capture paused.
    PauseHttp,
    /// Syscall counting switched from exact to sampled.
    SampleSyscalls,
    /// A tool stopped.
    StopTool(String),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::PauseHttp => "pause_http",
            Action::SampleSyscalls => "sample_syscalls",
            Action::StopTool(_) => "stop_tool",
        }
    }

    fn target(&self) -> &str {
        match self {
            Action::PauseHttp => "hotpath.http",
            Action::SampleSyscalls => "hotpath.syscalls",
            Action::StopTool(t) => t,
        }
    }
}

/// What to do after one interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Nothing.
    Hold,
    /// Take this step.
    Degrade(Action),
    /// Undo this step (the last one taken).
    Recover(Action),
}

/// The budget's state: the steps taken and how long the cost has been
/// above or under.
#[derive(Debug)]
pub(crate) struct Budget {
    /// The budget as a share of the machine (0..=1).
    limit: f64,
    /// Steps taken, with the share of the machine each saved.
    steps: Vec<(Action, f64)>,
    /// Whether the HTTP capture runs (and can be paused).
    http: bool,
    above: u32,
    below: u32,
}

impl Budget {
    /// A budget of `percent` % of the machine; `http` when the HTTP capture
    /// runs.
    pub(crate) fn new(percent: f64, http: bool) -> Budget {
        Budget {
            limit: percent / 100.0,
            steps: Vec::new(),
            http,
            above: 0,
            below: 0,
        }
    }

    /// Steps in force.
    pub(crate) fn steps(&self) -> usize {
        self.steps.len()
    }

    /// Decides after an interval that cost `cost` (share of the machine),
    /// with the agent's own part `agent` and the running tools' parts
    /// `tools`; `exact` tells whether syscalls are counted exactly.
    pub(crate) fn decide(
        &mut self,
        cost: f64,
        agent: f64,
        tools: &[(String, f64)],
        exact: bool,
    ) -> Decision {
        if cost > self.limit {
            self.below = 0;
            self.above += 1;
            if self.above < SUSTAIN {
                return Decision::Hold;
            }
            self.above = 0;
            let taken = |a: &Action| self.steps.iter().any(|s| s.0 == *a);
            let step = if self.http && !taken(&Action::PauseHttp) {
                Some((Action::PauseHttp, agent))
            } else if exact && !taken(&Action::SampleSyscalls) {
                Some((Action::SampleSyscalls, agent * (1.0 - SAMPLED_FRACTION)))
            } else {
                tools
                    .iter()
                    .filter(|(_, c)| *c > 0.0)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(t, c)| (Action::StopTool(t.clone()), *c))
            };
            return match step {
                Some((action, saved)) => {
                    self.steps.push((action.clone(), saved));
                    Decision::Degrade(action)
                }
                None => Decision::Hold,
            };
        }
        self.above = 0;
        let Some((_, saved)) = self.steps.last() else {
            self.below = 0;
            return Decision::Hold;
        };
        if cost + saved >= self.limit * RECOVER_BELOW {
            self.below = 0;
            return Decision::Hold;
        }
        self.below += 1;
        if self.below < SUSTAIN {
            return Decision::Hold;
        }
        self.below = 0;
        let (action, _) = self.steps.pop().expect("checked above");
        Decision::Recover(action)
    }
}

/// Holds the agent to a budget of `percent` % of the machine, checking
/// every `interval` what `overhead` measured; `counting` switches the hot
/// path's syscall counting (with the mode it starts in), None when
/// syscalls are not counted; `http` pauses the HTTP capture, None when it
/// does not run.
pub(crate) fn start(
    percent: f64,
    interval: Duration,
    overhead: Overhead,
    counting: Option<(SyscallControl, SyscallCounting)>,
    http: Option<HttpPause>,
    supervisor: Supervisor,
    ctx: &AgentContext,
) -> JoinHandle<()> {
    let registry = ctx.registry.clone();
    let shutdown = ctx.shutdown.clone();
    let mut budget = Budget::new(percent, http.is_some());
    let steps = registry.gauge(
        "eunomia_budget_degraded_steps",
        "Degradation steps the CPU budget has in force (0: none).",
        &[],
    );
    registry.observe_gauge(
        "eunomia_budget_cpu_ratio",
        "The CPU budget ([agent] cpu_budget) as a share of the machine.",
        &[],
        move || percent / 100.0,
    );
    tracing::info!(cpu_budget_percent = percent, "CPU budget in force");
    if http.is_some() {
        tracing::info!(
            "CPU budget: the HTTP capture is paused first (syscall counting rides on the same probe and can be sampled only once the capture is paused)"
        );
    }
    tokio::spawn(async move {
        let mut exact = counting
            .as_ref()
            .is_some_and(|(_, mode)| *mode == SyscallCounting::Exact);
        let control = counting.map(|(c, _)| c);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
            let view = &overhead;
            let parts = view.components();
            let active = supervisor.active();
            let agent = parts
                .iter()
                .find(|(c, _)| c == crate::overhead::AGENT)
                .map_or(0.0, |(_, c)| c.ratio);
            let tools: Vec<(String, f64)> = parts
                .iter()
                .filter_map(|(c, cost)| Some((c.strip_prefix("tool/")?.to_owned(), cost.ratio)))
                .filter(|(t, _)| active.contains(t))
                .collect();
            let cost = view.total_ratio();
            let bpf: f64 = parts.iter().map(|(_, c)| c.bpf_ratio).sum();
            let decision = budget.decide(cost, agent, &tools, exact);
            let mut step = Step {
                supervisor: &supervisor,
                control: control.as_ref(),
                http: http.as_ref(),
                registry: &registry,
                exact: &mut exact,
            };
            step.apply(&decision, (cost, bpf), percent);
            steps.set(budget.steps() as i64);
        }
    })
}

/// What carrying out a decision needs.
struct Step<'a> {
    supervisor: &'a Supervisor,
    control: Option<&'a SyscallControl>,
    http: Option<&'a HttpPause>,
    registry: &'a Registry,
    exact: &'a mut bool,
}

impl Step<'_> {
    /// Carries out a decision taken at a cost of `cost` (all, and the part
    /// BPF programs ran) of the machine; logs and counts it.
    fn apply(&mut self, decision: &Decision, (cost, bpf): (f64, f64), percent: f64) {
        let Step {
            supervisor,
            control,
            http,
            registry,
            exact,
        } = self;
        let (action, undo) = match decision {
            Decision::Hold => return,
            Decision::Degrade(a) => (a, false),
            Decision::Recover(a) => (a, true),
        };
        let (cost_pct, bpf_pct) = (cost * 100.0, bpf * 100.0);
        match (action, undo) {
            (Action::PauseHttp, _) => {
                if let Some(Err(e)) = http.map(|h| h.set(!undo)) {
                    tracing::warn!("CPU budget: could not switch the HTTP capture: {e}");
                }
            }
            (Action::SampleSyscalls, false) => {
                if let Some(c) = control {
                    c.request(SyscallCounting::Sampled);
                }
                **exact = false;
            }
            (Action::SampleSyscalls, true) => {
                if let Some(c) = control {
                    c.request(SyscallCounting::Exact);
                }
                **exact = true;
            }
            (Action::StopTool(t), false) => {
                supervisor.stop(t);
            }
            (Action::StopTool(t), true) => {
                let options = RunnerOptions::from_config(&supervisor.setup().1);
                if let Err(e) = supervisor.start(t, &[], options, false) {
                    tracing::warn!(tool = %t, "CPU budget: could not start the tool again: {e}");
                }
            }
        }
        if undo {
            tracing::info!(
                action = action.name(),
                target = action.target(),
                cost_percent = format!("{cost_pct:.3}"),
                bpf_percent = format!("{bpf_pct:.3}"),
                cpu_budget_percent = percent,
                "CPU budget: cost well under the budget, step undone"
            );
        } else {
            tracing::warn!(
                action = action.name(),
                target = action.target(),
                cost_percent = format!("{cost_pct:.3}"),
                bpf_percent = format!("{bpf_pct:.3}"),
                cpu_budget_percent = percent,
                "CPU budget: cost above the budget for {SUSTAIN} intervals, degrading"
            );
        }
        registry
            .counter(
                "eunomia_budget_actions_total",
                "Steps the CPU budget took (direction degrade or recover).",
                &[
                    ("action", action.name()),
                    ("target", action.target()),
                    ("direction", if undo { "recover" } else { "degrade" }),
                ],
            )
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<(String, f64)> {
        vec![("execsnoop".into(), 0.002), ("tcpstates".into(), 0.004)]
    }

    #[test]
    fn degrades_in_order_after_a_sustained_excess() {
        let mut b = Budget::new(1.0, false);
        // two intervals above: not yet
        assert_eq!(b.decide(0.05, 0.03, &tools(), true), Decision::Hold);
        assert_eq!(b.decide(0.05, 0.03, &tools(), true), Decision::Hold);
        assert_eq!(
            b.decide(0.05, 0.03, &tools(), true),
            Decision::Degrade(Action::SampleSyscalls)
        );
        // still above: the costliest tool, then the next
        for _ in 0..2 {
            assert_eq!(b.decide(0.03, 0.003, &tools(), false), Decision::Hold);
        }
        assert_eq!(
            b.decide(0.03, 0.003, &tools(), false),
            Decision::Degrade(Action::StopTool("tcpstates".into()))
        );
        assert_eq!(b.steps(), 2);
    }

    #[test]
    fn an_excess_that_does_not_last_changes_nothing() {
        let mut b = Budget::new(1.0, false);
        for _ in 0..10 {
            assert_eq!(b.decide(0.05, 0.03, &tools(), true), Decision::Hold);
            assert_eq!(b.decide(0.05, 0.03, &tools(), true), Decision::Hold);
            assert_eq!(b.decide(0.001, 0.0, &tools(), true), Decision::Hold);
        }
        assert_eq!(b.steps(), 0);
    }

    #[test]
    fn recovers_last_step_first_when_well_under() {
        let mut b = Budget::new(1.0, false);
        for _ in 0..3 {
            b.decide(0.05, 0.03, &tools(), true);
        }
        for _ in 0..3 {
            b.decide(0.02, 0.003, &tools(), false);
        }
        assert_eq!(b.steps(), 2);
        // under the budget, but undoing the tool stop (0.004) would not be
        // under 80% of it
        for _ in 0..5 {
            assert_eq!(b.decide(0.005, 0.003, &tools(), false), Decision::Hold);
        }
        for _ in 0..2 {
            assert_eq!(b.decide(0.001, 0.001, &tools(), false), Decision::Hold);
        }
        assert_eq!(
            b.decide(0.001, 0.001, &tools(), false),
            Decision::Recover(Action::StopTool("tcpstates".into()))
        );
        assert_eq!(b.steps(), 1);
    }

    #[test]
    fn pauses_the_http_capture_first_and_resumes_it_last() {
        let mut b = Budget::new(1.0, true);
        for _ in 0..2 {
            assert_eq!(b.decide(0.05, 0.03, &tools(), true), Decision::Hold);
        }
        assert_eq!(
            b.decide(0.05, 0.03, &tools(), true),
            Decision::Degrade(Action::PauseHttp)
        );
        // then syscall counting (the probe is free once the capture is
        // paused), then the tools
        for _ in 0..2 {
            b.decide(0.02, 0.01, &tools(), true);
        }
        assert_eq!(
            b.decide(0.02, 0.01, &tools(), true),
            Decision::Degrade(Action::SampleSyscalls)
        );
        for _ in 0..2 {
            b.decide(0.02, 0.003, &tools(), false);
        }
        assert_eq!(
            b.decide(0.02, 0.003, &tools(), false),
            Decision::Degrade(Action::StopTool("tcpstates".into()))
        );
        // well under: the tool first, then exact counting (0.009 saved),
        // the capture only when its cost at the pause (0.03) fits under 80%
        // of the budget again
        for _ in 0..3 {
            b.decide(0.001, 0.001, &tools(), false);
        }
        assert_eq!(b.steps(), 2);
        for _ in 0..6 {
            b.decide(0.0005, 0.0005, &tools(), false);
        }
        assert_eq!(b.steps(), 2, "exact counting would not fit");
        for _ in 0..6 {
            assert_eq!(b.decide(0.001, 0.001, &tools(), false), Decision::Hold);
        }
        let mut b2 = Budget::new(5.0, true);
        for _ in 0..3 {
            b2.decide(0.06, 0.03, &tools(), false);
        }
        for _ in 0..2 {
            assert_eq!(b2.decide(0.001, 0.001, &tools(), false), Decision::Hold);
        }
        assert_eq!(
            b2.decide(0.001, 0.001, &tools(), false),
            Decision::Recover(Action::PauseHttp)
        );
    }

    #[test]
    fn nothing_left_to_degrade_holds() {
        let mut b = Budget::new(1.0, false);
        for _ in 0..9 {
            assert_eq!(b.decide(0.05, 0.0, &[], false), Decision::Hold);
        }
    }
}
