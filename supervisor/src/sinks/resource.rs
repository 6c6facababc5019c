//! The OTLP resource describing this agent: `host.name`, `host.id` (from
//! `/etc/machine-id`), `service.name`, `service.version`, `service.instance.id`.

use opentelemetry_proto::tonic::resource::v1::Resource;

use super::otlp::encode::kv;

/// The resource attributes as pairs, for every sink that wants them.
pub fn attributes() -> Vec<(&'static str, String)> {
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into());
    let mut attrs = vec![
        ("service.name", "eunomia".to_owned()),
        ("service.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("host.name", host.clone()),
        ("service.instance.id", host),
        ("os.type", "linux".to_owned()),
    ];
    if let Some(id) =
        read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
    {
        attrs.push(("host.id", id));
    }
    attrs
}

/// The OTLP resource.
pub fn resource() -> Resource {
    Resource {
        attributes: attributes().into_iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}
