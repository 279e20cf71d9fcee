//! Manifests fetched by tag or digest, and the referrers of a manifest (distribution-spec 1.1 "Listing Referrers"):
//! through the referrers API where the registry has it, else through the index at the fallback tag `sha256-<hex>`
//! (the "Referrers Tag Schema"), which a push updates without dropping what others attached.

use ureq::http::{Method, StatusCode};

use super::client::{Body, MAX_DOCUMENT_LEN, RegistryClient};
use super::push::put_manifest;
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::artifact::referrers_tag;
use crate::oci::descriptor::Descriptor;
use crate::oci::index::{Index, parse_index};
use crate::oci::media_type::MediaType;

/// The manifest media types asked for: images, indexes, and the artifacts that are image manifests.
fn accept() -> String {
    [MediaType::OciManifest, MediaType::DockerManifest, MediaType::OciIndex, MediaType::DockerManifestList]
        .map(|m| m.as_str().to_string())
        .join(", ")
}

/// A manifest the registry serves: its media type (from `Content-Type`) and exact bytes, checked against `digest`
/// when the reference is one.
pub struct FetchedManifest {
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// The manifest at `reference` (a tag or a digest), or `None` when the registry has none there.
pub fn get_manifest(client: &RegistryClient, reference: &str) -> Result<Option<FetchedManifest>> {
    request_manifest(client, reference, false)
}

/// The manifest at `reference`, which must exist: a 404 is an error quoting the registry's own words
/// (`MANIFEST_UNKNOWN`), as every other refusal.
pub fn fetch_manifest(client: &RegistryClient, reference: &str) -> Result<FetchedManifest> {
    Ok(request_manifest(client, reference, true)?.expect("a missing manifest is an error"))
}

fn request_manifest(client: &RegistryClient, reference: &str, must_exist: bool) -> Result<Option<FetchedManifest>> {
    let url = client.url(&format!("manifests/{reference}"));
    let reply = client.send(Method::GET, &url, &[("accept", accept())], Body::Empty)?;
    if reply.status == StatusCode::NOT_FOUND && !must_exist {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(client.fail(&format!(
            "GET manifest {reference} answered {}: {}",
            reply.status,
            reply.error_text()
        )));
    }
    if reply.truncated {
        return Err(
            client.fail(&format!("the manifest is larger than {MAX_DOCUMENT_LEN} bytes, the most this tool reads"))
        );
    }
    let media_type = MediaType::from(
        reply
            .header("content-type")
            .map_or(MediaType::OciManifest.as_str(), |t| t.split(';').next().unwrap_or("").trim()),
    );
    let digest = Digest::of(&reply.body);
    if reference.starts_with("sha256:") && reference != digest.to_string() {
        return Err(client.fail(&format!("the registry served {digest} for the manifest {reference}")));
    }
    Ok(Some(FetchedManifest { media_type, bytes: reply.body, digest }))
}

/// Where a registry lists referrers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersSupport {
    /// The referrers API answers: a pushed manifest with a `subject` is listed by the registry itself.
    Api,
    /// No referrers API (distribution 2.8, older Harbor): the index at the fallback tag lists them.
    FallbackTag,
}

/// The referrers of `subject` and where the registry keeps them. Listings are descriptors only; the caller fetches
/// each manifest and checks its `subject`.
pub fn list_referrers(client: &RegistryClient, subject: &Digest) -> Result<(ReferrersSupport, Vec<Descriptor>)> {
    let url = client.url(&format!("referrers/{subject}"));
    let reply = client.send(Method::GET, &url, &[("accept", MediaType::OciIndex.as_str().to_string())], Body::Empty)?;
    let is_index = reply
        .header("content-type")
        .is_some_and(|t| MediaType::from(t.split(';').next().unwrap_or("").trim()) == MediaType::OciIndex);
    // distribution-spec: a registry with the API answers 200 with an index, an empty one when nothing refers.
    if reply.status == StatusCode::OK && is_index && !reply.truncated {
        let index = parse_index(&reply.body)
            .map_err(|problem| client.fail(&format!("the referrers of {subject}: {problem}")))?;
        return Ok((ReferrersSupport::Api, index.manifests));
    }
    let listed = fallback_index(client, subject)?.map(|index| index.manifests).unwrap_or_default();
    Ok((ReferrersSupport::FallbackTag, listed))
}

/// The index at the fallback tag of `subject`, if there is one.
fn fallback_index(client: &RegistryClient, subject: &Digest) -> Result<Option<Index>> {
    let Some(fetched) = get_manifest(client, &referrers_tag(subject))? else {
        return Ok(None);
    };
    if !fetched.media_type.is_index() {
        return Err(client.fail(&format!(
            "the tag {} holds a {}, not the index of referrers the tag schema puts there",
            referrers_tag(subject),
            fetched.media_type
        )));
    }
    let index = parse_index(&fetched.bytes)
        .map_err(|problem| client.fail(&format!("the referrers index {}: {problem}", referrers_tag(subject))))?;
    Ok(Some(index))
}

/// Adds `added` to the fallback index of `subject` (read, merged, put back), keeping every descriptor already
/// listed: the tag schema's "update" step. Another writer racing between read and put can lose an entry; the spec
/// accepts this, and a repeated push restores it.
pub fn add_to_fallback_index(client: &RegistryClient, subject: &Digest, added: &[Descriptor]) -> Result<()> {
    let mut index = fallback_index(client, subject)?.unwrap_or_else(|| Index::new(Vec::new()));
    let before = index.manifests.len();
    for descriptor in added {
        if !index.manifests.iter().any(|d| d.digest == descriptor.digest) {
            index.manifests.push(descriptor.clone());
        }
    }
    if index.manifests.len() == before && before > 0 {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&index).expect("an index always serialises");
    put_manifest(client, &referrers_tag(subject), &MediaType::OciIndex, &bytes)?;
    Ok(())
}
