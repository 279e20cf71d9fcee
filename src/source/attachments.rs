//! Reading what is attached to an image back: from a layout's `index.json` (the entries [`super::layout`] set aside),
//! or from a registry (its referrers API or fallback tag, and cosign's `.sig` and `.att` tags). Each attachment's
//! manifest is read within the size a document may have and checked against its digest like any document; a referrer whose
//! `subject` is another manifest is skipped.

use super::{Blobs, SourceImage};
use crate::blobs::BlobSource;
use crate::digest::{Digest, DigestReader};
use crate::error::{Error, Result};
use crate::oci::artifact::{Attachment, Placement, attestation_tag, signature_tag};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::Document;
use crate::oci::manifest::{Manifest, parse_manifest};
use crate::registry::referrers::{get_manifest, list_referrers};

/// The most attachments read for one image: an image has a few (an SBOM or two, provenance, a signature); a
/// listing past this is someone else's flood, refused rather than fetched.
pub const MAX_ATTACHMENTS: usize = 64;

impl SourceImage {
    /// Reads the SBOMs, provenance, signatures and attestations attached to the image into
    /// [`SourceImage::attachments`], so that a copy or push carries them and `verify` can check them.
    pub fn load_attachments(&mut self) -> Result<()> {
        let Some(manifest) = &self.image.manifest else {
            return Ok(());
        };
        let subject = manifest.descriptor.digest.clone();
        let mut found = Vec::new();
        match &self.blobs {
            Blobs::Registry { client, .. } => {
                let (_, listed) = list_referrers(client, &subject)?;
                self.within_limit(listed.len())?;
                for descriptor in listed {
                    found.push((descriptor, None, Placement::Referrer));
                }
                for tag in [signature_tag(&subject), attestation_tag(&subject)] {
                    if let Some(fetched) = get_manifest(client, &tag)? {
                        let descriptor =
                            Descriptor::new(fetched.media_type, fetched.digest, fetched.bytes.len() as u64);
                        found.push((descriptor, Some(fetched.bytes), Placement::Tag(tag)));
                    }
                }
            }
            _ => {
                self.within_limit(self.candidates.len())?;
                found.extend(self.candidates.iter().map(|(d, placement)| (d.clone(), None, placement.clone())));
            }
        }
        for (descriptor, bytes, placement) in found {
            if let Some(attachment) = self.read_attachment(descriptor, bytes, placement, &subject)? {
                self.attachments.push(attachment);
            }
        }
        Ok(())
    }

    /// Reads every blob of the attachments once, checking its size and digest.
    pub fn verify_attachments(&self) -> Result<()> {
        for blob in self.attachments.iter().flat_map(|a| &a.blobs) {
            let mut reader = DigestReader::new(self.open_blob(&blob.digest)?);
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| Error::bad_image(&self.reference, format!("attached blob {}: {e}", blob.digest)))?;
            let (digest, _) = reader.finish();
            if digest != blob.digest {
                return Err(Error::bad_image(&self.reference, format!("attached blob {} is corrupt", blob.digest)));
            }
        }
        Ok(())
    }

    fn within_limit(&self, count: usize) -> Result<()> {
        if count > MAX_ATTACHMENTS {
            return Err(Error::bad_image(
                &self.reference,
                format!("{count} manifests are attached to the image, more than the {MAX_ATTACHMENTS} read"),
            ));
        }
        Ok(())
    }

    /// One attachment: its manifest (fetched already, or read now and checked), about `subject` when a referrer.
    fn read_attachment(
        &mut self,
        descriptor: Descriptor,
        bytes: Option<Vec<u8>>,
        placement: Placement,
        subject: &Digest,
    ) -> Result<Option<Attachment>> {
        if !descriptor.media_type.is_manifest() {
            // An index among the referrers (a nested attestation index) is not something this tool copies.
            return Ok(None);
        }
        let bytes = match (bytes, &self.blobs) {
            (Some(bytes), _) => bytes,
            (None, Blobs::Registry { client, .. }) => {
                let fetched = get_manifest(client, &descriptor.digest.to_string())?.ok_or_else(|| {
                    client.fail(&format!(
                        "the referrer {} is listed but the registry has no such manifest",
                        descriptor.digest
                    ))
                })?;
                fetched.bytes
            }
            (None, _) => self.blobs.read_verified(&descriptor, &self.reference)?,
        };
        let manifest: Manifest = parse_manifest(&bytes).map_err(|problem| {
            Error::bad_image(&self.reference, format!("attached manifest {}: {problem}", descriptor.digest))
        })?;
        if placement == Placement::Referrer && manifest.subject.as_ref().map(|s| &s.digest) != Some(subject) {
            return Ok(None);
        }
        let blobs: Vec<Descriptor> = std::iter::once(manifest.config).chain(manifest.layers).collect();
        if let Blobs::Registry { sizes, .. } = &mut self.blobs {
            sizes.extend(blobs.iter().map(|d| (d.digest.clone(), d.size)));
        }
        let descriptor = Descriptor {
            artifact_type: manifest.artifact_type.or(descriptor.artifact_type),
            annotations: manifest.annotations,
            ..Descriptor::new(descriptor.media_type, descriptor.digest, descriptor.size)
        };
        Ok(Some(Attachment { manifest: Document { descriptor, bytes }, blobs, subject: subject.clone(), placement }))
    }
}
