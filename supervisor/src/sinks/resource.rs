//! The OTLP resource describing this agent, named by the OpenTelemetry
//! semantic conventions: detected `service.name` (`eunomia`),
//! `service.version`, `service.instance.id`, `host.name`, `host.id` (from
//! `/etc/machine-id`), `os.type`, `k8s.node.name` (from `NODE_NAME`, which the
//! DaemonSet sets from the downward API); then `[agent] resource_attributes`
//! (with `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`) add to or replace
//! them.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::resource::v1::Resource;

use super::otlp::encode::kv;

/// The resource attributes as pairs: the detected ones, then `configured`
/// (which wins on a shared key).
pub(crate) fn attributes(configured: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let host = crate::host::hostname();
    let mut attrs: BTreeMap<String, String> = [
        ("service.name", "eunomia".to_owned()),
        ("service.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("host.name", host.clone()),
        ("service.instance.id", host),
        ("os.type", "linux".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(id) = crate::host::machine_id() {
        attrs.insert("host.id".into(), id);
    }
    if let Some(node) = std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        attrs.insert("k8s.node.name".into(), node.trim().to_owned());
    }
    attrs.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
    attrs.into_iter().collect()
}

/// The OTLP resource.
pub fn resource(configured: &BTreeMap<String, String>) -> Resource {
    Resource {
        attributes: attributes(configured)
            .into_iter()
            .map(|(k, v)| kv(&k, v))
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_attributes_replace_and_add() {
        let configured: BTreeMap<String, String> =
            [("service.name", "node-agent"), ("k8s.cluster.name", "eu-1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let attrs: BTreeMap<_, _> = attributes(&configured).into_iter().collect();
        assert_eq!(attrs["service.name"], "node-agent");
        assert_eq!(attrs["k8s.cluster.name"], "eu-1");
        assert_eq!(attrs["os.type"], "linux");
        assert!(attrs.contains_key("host.name"));
    }
}
