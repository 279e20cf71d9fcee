//! Pushing an image (OCI distribution spec, "Pushing blobs" and "Pushing manifests"): each blob is checked with
//! `HEAD` and uploaded only when missing, mounted from another repository when the user names one, sent whole when
//! small and in resendable chunks when large; blobs go up a few at a time; the manifest is put last, once every blob
//! is confirmed, and the registry's digest for it is checked against ours.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use ureq::http::{Method, StatusCode};

use super::client::{Body, RegistryClient, Reply};
use crate::blobs::BlobSource;
use crate::digest::Digest;
use crate::error::{Remedy, Result};
use crate::oci::descriptor::Descriptor;
use crate::oci::media_type::MediaType;

/// How many blobs are uploaded at once.
pub const PARALLEL_UPLOADS: usize = 3;
/// How many times a blob upload starts over from scratch after a failure midway.
const UPLOAD_RESTARTS: u32 = 3;

/// What a push did, as `--json` reports it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest_digest: Option<Digest>,
    pub uploaded: Vec<Digest>,
    pub skipped: Vec<Digest>,
    pub mounted: Vec<Digest>,
    pub bytes_sent: u64,
    /// The manifests of SBOMs, provenance and signatures put beside the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Digest>,
}

enum BlobOutcome {
    Uploaded(u64),
    Skipped,
    Mounted,
}

/// A blob to push, and the repository of the same registry to mount it from, if any.
#[derive(Clone, Debug)]
pub struct BlobToPush {
    pub descriptor: Descriptor,
    pub mount_from: Option<String>,
}

/// Uploads every blob the registry lacks. Nothing becomes visible until [`put_manifest`].
pub fn push_blobs(
    client: &RegistryClient,
    source: &dyn BlobSource,
    blobs: &[BlobToPush],
    report: &mut PushReport,
) -> Result<()> {
    for from in blobs.iter().filter_map(|b| b.mount_from.as_deref()) {
        client.add_pull_scope(from);
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<BlobOutcome>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_UPLOADS.min(blobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(blob) = blobs.get(i) else { return };
                    let outcome = ensure_blob(client, source, &blob.descriptor, blob.mount_from.as_deref());
                    let failed = outcome.is_err();
                    results.lock().expect("results lock").push((i, outcome));
                    if failed {
                        // Stop handing out work; the others finish their current blob.
                        next.store(blobs.len(), Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(i, _)| *i);
    for (i, outcome) in results {
        let digest = blobs[i].descriptor.digest.clone();
        match outcome? {
            BlobOutcome::Uploaded(bytes) => {
                report.uploaded.push(digest);
                report.bytes_sent += bytes;
            }
            BlobOutcome::Skipped => report.skipped.push(digest),
            BlobOutcome::Mounted => report.mounted.push(digest),
        }
    }
    Ok(())
}

fn ensure_blob(
    client: &RegistryClient,
    source: &dyn BlobSource,
    blob: &Descriptor,
    mount_from: Option<&str>,
) -> Result<BlobOutcome> {
    let head = client.send(Method::HEAD, &client.url(&format!("blobs/{}", blob.digest)), &[], Body::Empty)?;
    if head.status.is_success() {
        return Ok(BlobOutcome::Skipped);
    }
    check_access(client, &head)?;
    let mut restarts = 0;
    loop {
        let start = match mount_from {
            Some(from) => format!("blobs/uploads/?mount={}&from={from}", blob.digest),
            None => "blobs/uploads/".to_string(),
        };
        let started =
            client.send(Method::POST, &client.url(&start), &[("content-length", "0".into())], Body::Bytes(&[]))?;
        if started.status == StatusCode::CREATED && mount_from.is_some() {
            return Ok(BlobOutcome::Mounted);
        }
        expect(client, &started, StatusCode::ACCEPTED, || format!("starting the upload of {}", blob.digest))?;
        match upload(client, source, blob, &started) {
            Ok(bytes) => return Ok(BlobOutcome::Uploaded(bytes)),
            // An upload that failed midway starts over with a fresh session, unless the registry stalled: its
            // requests already waited and retried (client.rs), and starting over would multiply that wait.
            Err(_) if restarts < UPLOAD_RESTARTS && !client.stalled() => restarts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Sends the blob to the upload session `started` opened: whole in the closing `PUT` when small, else in `PATCH`
/// chunks. Every request body is streamed from the source, so memory stays small whatever the blob's size.
fn upload(client: &RegistryClient, source: &dyn BlobSource, blob: &Descriptor, started: &Reply) -> Result<u64> {
    let mut location = location(client, started)?;
    let stream = |offset: u64, length: u64| {
        move || -> Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(source.open_blob_at(&blob.digest, offset)?.take(length)))
        }
    };
    let octets = || ("content-type", "application/octet-stream".to_string());
    let mut offset: u64 = 0;
    let chunk_size = client.chunk_size();
    if blob.size > chunk_size {
        while offset < blob.size {
            let length = chunk_size.min(blob.size - offset);
            let end = offset + length - 1;
            let headers =
                [octets(), ("content-range", format!("{offset}-{end}")), ("content-length", length.to_string())];
            let open = stream(offset, length);
            let reply = client.send(Method::PATCH, &location, &headers, Body::Stream(&open))?;
            expect(client, &reply, StatusCode::ACCEPTED, || {
                format!("uploading bytes {offset}-{end} of {}", blob.digest)
            })?;
            location = self::location(client, &reply)?;
            offset = end + 1;
        }
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={}", blob.digest);
    let rest = blob.size - offset;
    let headers = [octets(), ("content-length", rest.to_string())];
    let open = stream(offset, rest);
    let body = if rest == 0 { Body::Bytes(&[]) } else { Body::Stream(&open) };
    let reply = client.send(Method::PUT, &url, &headers, body)?;
    expect(client, &reply, StatusCode::CREATED, || format!("completing the upload of {}", blob.digest))?;
    check_digest(client, &reply, &blob.digest)?;
    Ok(blob.size)
}

fn location(client: &RegistryClient, reply: &Reply) -> Result<String> {
    reply
        .header("location")
        .map(|l| client.resolve(l))
        .ok_or_else(|| client.fail("the registry's upload answer has no Location header"))
}

/// Puts the manifest, after every blob is confirmed, and checks the digest the registry computed.
pub fn put_manifest(
    client: &RegistryClient,
    reference: &str,
    media_type: &MediaType,
    manifest: &[u8],
) -> Result<Digest> {
    let ours = Digest::of(manifest);
    let headers = [("content-type", media_type.as_str().to_string()), ("content-length", manifest.len().to_string())];
    let reply =
        client.send(Method::PUT, &client.url(&format!("manifests/{reference}")), &headers, Body::Bytes(manifest))?;
    if reply.status != StatusCode::CREATED && reply.status != StatusCode::OK {
        check_access(client, &reply)?;
        let error =
            client.fail(&format!("the registry rejected the manifest ({}): {}", reply.status, reply.error_text()));
        // Some registries still refuse zstd layers (distribution before 2.8, older Harbor and Quay).
        let zstd = String::from_utf8_lossy(manifest).contains(MediaType::OciLayerZstd.as_str());
        return Err(if zstd { error.with_remedy(Remedy::UseGzip) } else { error });
    }
    check_digest(client, &reply, &ours)?;
    Ok(ours)
}

fn check_digest(client: &RegistryClient, reply: &Reply, expected: &Digest) -> Result<()> {
    match reply.header("docker-content-digest") {
        Some(theirs) if theirs.trim() != expected.to_string() => Err(client.fail(&format!(
            "the registry stored {} where {expected} was sent: the data was altered on the way",
            crate::error::display_text(theirs, 128)
        ))),
        _ => Ok(()),
    }
}

/// Checks that a step answered `expected`; otherwise says which step failed, how, and (for access errors) why.
fn expect(client: &RegistryClient, reply: &Reply, expected: StatusCode, step: impl FnOnce() -> String) -> Result<()> {
    if reply.status == expected {
        return Ok(());
    }
    check_access(client, reply)?;
    Err(client.fail(&format!("{} answered {}: {}", step(), reply.status, reply.error_text())))
}

/// Turns authorization and repository errors into messages that say what to do.
fn check_access(client: &RegistryClient, reply: &Reply) -> Result<()> {
    match reply.status.as_u16() {
        401 | 403 => Err(client.fail(&format!(
            "push refused ({}): wrong credentials, or no push right on this repository ({})",
            reply.status,
            reply.error_text()
        ))),
        404 if reply.error_text().contains("NAME_UNKNOWN") => {
            Err(client
                .fail("the repository does not exist and the registry does not create it on push: create it first"))
        }
        _ => Ok(()),
    }
}
