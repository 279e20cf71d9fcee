//! SBOMs as OCI 1.1 artifacts of the image: a file the user gives, copied byte for byte, or a generated document.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::oci::artifact::{ANNOTATION_TITLE, Attachment};
use crate::oci::descriptor::Descriptor;
use crate::oci::media_type::MediaType;
use crate::sbom::{GeneratedFormat, SbomFile};

/// `file` attached to `subject` unchanged: streamed into `staging`, refused if it changed size since it was
/// recognised.
pub fn file_artifact(staging: &BlobStore, subject: &Descriptor, file: &SbomFile) -> Result<Attachment> {
    let input = std::fs::File::open(&file.path).map_err(|e| Error::io("cannot open the SBOM", &file.path, e))?;
    let mut writer = staging.writer()?;
    let copied = std::io::copy(&mut input.take(file.size + 1), &mut writer)
        .map_err(|e| Error::io("cannot copy the SBOM", &file.path, e))?;
    writer.flush().map_err(|e| Error::io("cannot write", staging.root(), e))?;
    if copied != file.size {
        return Err(Error::BadInput {
            input: file.path.display().to_string(),
            problem: format!("the SBOM changed while it was read ({} bytes, then {copied})", file.size),
        });
    }
    let (digest, size) = writer.commit()?;
    let title = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    artifact(
        staging,
        subject,
        file.artifact_type(),
        Descriptor::new(MediaType::from(file.media_type), digest, size),
        title,
    )
}

/// A generated SBOM (`bytes` in `format`) attached to `subject`.
pub fn generated_artifact(
    staging: &BlobStore,
    subject: &Descriptor,
    format: GeneratedFormat,
    bytes: &[u8],
) -> Result<Attachment> {
    let (digest, size) = staging.put(bytes)?;
    let title = match format {
        GeneratedFormat::Spdx23 => "sbom.spdx.json",
        GeneratedFormat::CycloneDx16 => "sbom.cdx.json",
    };
    let layer = Descriptor::new(MediaType::from(format.media_type()), digest, size);
    artifact(staging, subject, format.media_type(), layer, title.to_string())
}

fn artifact(
    staging: &BlobStore,
    subject: &Descriptor,
    artifact_type: &str,
    mut layer: Descriptor,
    title: String,
) -> Result<Attachment> {
    layer.annotations = Some(BTreeMap::from([(ANNOTATION_TITLE.to_string(), title)]));
    Attachment::artifact(staging, subject, artifact_type, vec![layer], BTreeMap::new())
}
