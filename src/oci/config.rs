//! Image configs (image-spec config.md): the platform, the execution parameters and the layers' diff_ids, as typed
//! structs whose field order is fixed so that the same config always serialises to the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::document::{ParseResult, parse_document};
use super::manifest::MAX_IMAGE_LAYERS;
use crate::digest::Digest;
use crate::oci::platform::Platform;

/// Parses an image config (config.md) and checks its diff_id count.
pub fn parse_config(bytes: &[u8]) -> ParseResult<ImageConfig> {
    let config: ImageConfig = parse_document(bytes, "image config")?;
    if config.rootfs.diff_ids.len() > MAX_IMAGE_LAYERS {
        return Err(format!(
            "the image config lists {} diff_ids, more than the {MAX_IMAGE_LAYERS} an image may have",
            config.rootfs.diff_ids.len()
        ));
    }
    Ok(config)
}

/// An empty JSON object: the value type of `ExposedPorts` and `Volumes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The execution parameters of config.md (`config` inside the image config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// config.md: the image configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform { architecture: self.architecture.clone(), variant: self.variant.clone() }
    }
}

/// RFC 3339 UTC time for seconds since the epoch, as config.md's `created` wants.
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn config_serialises_with_spec_field_names_in_a_fixed_order() {
        let config = ImageConfig {
            created: Some(rfc3339(0)),
            author: None,
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            os: "linux".into(),
            config: ContainerConfig {
                env: Some(vec!["A=1".into()]),
                exposed_ports: Some(BTreeMap::from([("80/tcp".into(), Empty {})])),
                ..Default::default()
            },
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![] },
            history: vec![],
        };
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"created":"1970-01-01T00:00:00Z","architecture":"arm64","variant":"v8","os":"linux","config":{"ExposedPorts":{"80/tcp":{}},"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }
}
