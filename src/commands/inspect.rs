//! `inspect`: open an image, verify every blob, and describe it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Result;
use crate::oci::artifact::{ANNOTATION_TITLE, Attachment, Placement};
use crate::oci::config::ContainerConfig;
use crate::oci::reference::ImageRef;
use crate::registry::ClientOptions;
use crate::source::{self, VerifiedLayer};

#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub reference: String,
    pub names: Vec<String>,
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub created: Option<String>,
    pub author: Option<String>,
    pub config: ContainerConfig,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub layers: Vec<VerifiedLayer>,
    /// SBOMs, provenance, signatures and attestations attached to the image.
    pub attachments: Vec<AttachmentReport>,
    /// Every blob's size and digest (and every layer's diff_id) were checked.
    pub verified: bool,
}

/// One attachment as reports list it.
#[derive(Clone, Debug, Serialize)]
pub struct AttachmentReport {
    /// The digest of its manifest.
    pub digest: Digest,
    /// `referrer` (an OCI 1.1 artifact) or the tag it is stored at (`sha256-<hex>.sig`, `.att`).
    pub placement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Its blobs: the SBOM, the statement, the signed payloads.
    pub layers: Vec<AttachedBlob>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttachedBlob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The file it was made from (`org.opencontainers.image.title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl AttachmentReport {
    pub fn of(attachment: &Attachment) -> AttachmentReport {
        let layers = attachment
            .blobs
            .iter()
            .skip(1)
            .map(|d| AttachedBlob {
                media_type: d.media_type.to_string(),
                digest: d.digest.clone(),
                size: d.size,
                title: d.annotations.as_ref().and_then(|a| a.get(ANNOTATION_TITLE)).cloned(),
            })
            .collect();
        AttachmentReport {
            digest: attachment.manifest.descriptor.digest.clone(),
            placement: match &attachment.placement {
                Placement::Referrer => "referrer".into(),
                Placement::Tag(tag) => tag.clone(),
            },
            artifact_type: attachment.artifact_type().map(str::to_string),
            layers,
        }
    }
}

pub fn inspect(reference: &ImageRef) -> Result<InspectReport> {
    inspect_with(reference, &ClientOptions::default())
}

/// Inspects an image; `registry` says how to reach a `docker://` one.
pub fn inspect_with(reference: &ImageRef, registry: &ClientOptions) -> Result<InspectReport> {
    let mut source = source::open_with(reference, registry)?;
    let layers = source.verify_layers()?;
    source.load_attachments()?;
    source.verify_attachments()?;
    let image = &source.image;
    Ok(InspectReport {
        reference: source.reference.clone(),
        names: source.names.clone(),
        manifest_digest: image.manifest.as_ref().map(|m| m.descriptor.digest.clone()),
        config_digest: image.config_descriptor.digest.clone(),
        architecture: image.config.architecture.clone(),
        variant: image.config.variant.clone(),
        os: image.config.os.clone(),
        created: image.config.created.clone(),
        author: image.config.author.clone(),
        config: image.config.config.clone(),
        annotations: image.annotations.clone(),
        layers,
        attachments: source.attachments.iter().map(AttachmentReport::of).collect(),
        verified: true,
    })
}

impl InspectReport {
    /// The report for people: one fact per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let platform = match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        };
        let _ = writeln!(out, "Image:        {}", self.reference);
        if !self.names.is_empty() {
            let _ = writeln!(out, "Names:        {}", self.names.join(", "));
        }
        if let Some(d) = &self.manifest_digest {
            let _ = writeln!(out, "Manifest:     {d}");
        }
        let _ = writeln!(out, "Config:       {}", self.config_digest);
        let _ = writeln!(out, "Platform:     {platform}");
        if let Some(created) = &self.created {
            let _ = writeln!(out, "Created:      {created}");
        }
        if let Some(author) = &self.author {
            let _ = writeln!(out, "Author:       {author}");
        }
        let c = &self.config;
        let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default());
        for (label, value) in [
            ("Entrypoint:", list(&c.entrypoint)),
            ("Cmd:", list(&c.cmd)),
            ("User:", c.user.clone()),
            ("WorkingDir:", c.working_dir.clone()),
            ("StopSignal:", c.stop_signal.clone()),
            ("Ports:", c.exposed_ports.as_ref().map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))),
            ("Volumes:", c.volumes.as_ref().map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "{label:<13} {value}");
            }
        }
        for env in c.env.iter().flatten() {
            let _ = writeln!(out, "Env:          {env}");
        }
        for (k, v) in c.labels.iter().flatten() {
            let _ = writeln!(out, "Label:        {k}={v}");
        }
        for (k, v) in &self.annotations {
            let _ = writeln!(out, "Annotation:   {k}={v}");
        }
        let _ = writeln!(out, "Layers:       {}", self.layers.len());
        for layer in &self.layers {
            let _ = writeln!(
                out,
                "  {}  {} ({} uncompressed)  {}",
                layer.digest,
                human_size(layer.size),
                human_size(layer.uncompressed_size),
                layer.media_type
            );
        }
        for attachment in &self.attachments {
            let kind = attachment.artifact_type.as_deref().unwrap_or("signature image");
            let _ = writeln!(out, "Attached:     {}  {kind}  ({})", attachment.digest, attachment.placement);
            for blob in &attachment.layers {
                let title = blob.title.as_deref().map(|t| format!("  {t}")).unwrap_or_default();
                let _ = writeln!(out, "  {}  {}  {}{title}", blob.digest, human_size(blob.size), blob.media_type);
            }
        }
        let _ = writeln!(out, "Verified:     every blob matches its digest and size; every layer its diff_id");
        out
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
