//! The overhead part of `eunomia status`: what the agent, each tool and
//! their BPF programs cost over the last interval, from the
//! `eunomia_overhead_*` self-metrics (see `crate::overhead`).

use crate::control::proto;

/// `overhead:` lines, or none when the agent has not measured yet.
pub(crate) fn lines(metrics: &[proto::SelfMetric]) -> Vec<String> {
    let get = |name: &str, component: &str, program: Option<&str>| {
        metrics
            .iter()
            .find(|m| {
                m.name == name
                    && m.labels.get("component").map(String::as_str) == Some(component)
                    && m.labels.get("program").map(String::as_str) == program
            })
            .map(|m| m.value)
    };
    let Some(total) = get("eunomia_overhead_cpu_ratio", "total", None) else {
        return Vec::new();
    };
    let mut parts: Vec<(&str, f64)> = metrics
        .iter()
        .filter(|m| m.name == "eunomia_overhead_cpu_ratio" && !m.labels.contains_key("program"))
        .filter_map(|m| Some((m.labels.get("component")?.as_str(), m.value)))
        .filter(|(c, _)| *c != "total")
        .collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shares: Vec<String> = parts
        .iter()
        .map(|(c, r)| format!("{c} {:.2}%", r * 100.0))
        .collect();
    let mut out = vec![format!(
        "overhead:  {:.2}% of the machine over the last interval ({}); BPF programs:",
        total * 100.0,
        shares.join(", ")
    )];
    let mut progs: Vec<(&str, &str, f64, f64)> = metrics
        .iter()
        .filter(|m| m.name == "eunomia_overhead_bpf_cpu_ratio")
        .filter_map(|m| {
            let c = m.labels.get("component")?;
            let p = m.labels.get("program")?;
            let per_run = get("eunomia_overhead_bpf_seconds_per_run", c, Some(p))?;
            Some((c.as_str(), p.as_str(), m.value, per_run))
        })
        .collect();
    progs.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (c, p, ratio, per_run) in progs {
        out.push(format!(
            "  {c:<18} {p:<20} {:>8.0} ns/run {:>7.3}% CPU",
            per_run * 1e9,
            ratio * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, labels: &[(&str, &str)], value: f64) -> proto::SelfMetric {
        proto::SelfMetric {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            value,
        }
    }

    #[test]
    fn overhead_is_shown_per_component_and_program() {
        let metrics = [
            m(
                "eunomia_overhead_cpu_ratio",
                &[("component", "total")],
                0.0125,
            ),
            m(
                "eunomia_overhead_cpu_ratio",
                &[("component", "agent")],
                0.01,
            ),
            m(
                "eunomia_overhead_cpu_ratio",
                &[("component", "tool/execsnoop")],
                0.0025,
            ),
            m(
                "eunomia_overhead_bpf_cpu_ratio",
                &[("component", "agent"), ("program", "count_sys_exit")],
                0.008,
            ),
            m(
                "eunomia_overhead_bpf_seconds_per_run",
                &[("component", "agent"), ("program", "count_sys_exit")],
                38e-9,
            ),
        ];
        let lines = lines(&metrics);
        assert_eq!(
            lines[0],
            "overhead:  1.25% of the machine over the last interval (agent 1.00%, tool/execsnoop 0.25%); BPF programs:"
        );
        assert!(
            lines[1].contains("count_sys_exit") && lines[1].contains("38 ns/run"),
            "{lines:?}"
        );
        assert!(lines[1].contains("0.800% CPU"), "{lines:?}");
        assert!(super::lines(&metrics[1..]).is_empty());
    }
}
