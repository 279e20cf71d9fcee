//! `docker-daemon:NAME[:TAG]`: the image loaded straight into a running Docker engine with `POST /images/load`,
//! the call `docker load` makes, the docker-archive ([`super::archive::write`]) streamed to it as it is written,
//! with no file in between. The engine is asked `/_ping` before any work, and its JSON answer to the load is read:
//! an error there is shown in one line.

pub mod engine;

use std::fs::File;
use std::io::{BufWriter, Write};

use engine::{Chunked, Engine, read_answer, shown};

use super::{PreparedOutput, Publication};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::reference::ImageName;

/// Checks, before any work, that the engine answers.
pub fn check() -> Result<()> {
    Engine::from_env()?.ping()
}

/// Opens every blob to send: what fails to open fails here, before any output is committed.
pub fn prepare(name: &ImageName, publication: &Publication, staging: &BlobStore) -> Result<Box<dyn PreparedOutput>> {
    let engine = Engine::from_env()?;
    if publication.is_index() {
        return Err(engine.fail(format!(
            "docker-daemon:{} takes one image: the engine keeps one platform of a name",
            name.familiar()
        )));
    }
    engine.ping()?;
    let blobs = publication
        .blob_digests()
        .into_iter()
        .map(|digest| Ok((staging.open_file(&digest)?, digest)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Box::new(PreparedLoad { engine, name: name.clone(), publication: publication.clone(), blobs }))
}

struct PreparedLoad {
    engine: Engine,
    name: ImageName,
    publication: Publication,
    blobs: Vec<(File, Digest)>,
}

impl PreparedOutput for PreparedLoad {
    fn commit(self: Box<Self>) -> Result<Option<crate::registry::PushReport>> {
        let PreparedLoad { engine, name, publication, blobs } = *self;
        let mut connection = engine.connect()?;
        let head = "POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nUser-Agent: rootfs2image\r\n\
                    Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let write_error = |e: std::io::Error| engine.fail(format!("the load was cut off: {e}"));
        let sent = connection.write_all(head.as_bytes()).map_err(write_error).and_then(|()| {
            let body = BufWriter::with_capacity(1 << 20, Chunked::new(&mut connection));
            let ref_name = name.to_string();
            let body = super::archive::write(body, Some(&ref_name), Some(&name), &publication, &blobs, &write_error)?;
            let chunked = body.into_inner().map_err(|e| write_error(e.into_error()))?;
            chunked.finish().map(drop).map_err(write_error)
        });
        // An engine that refused the load may have closed the connection while the archive was being sent: its
        // answer says why better than the broken pipe does.
        let (status, body) = match read_answer(&mut connection) {
            Ok(answer) => answer,
            Err(e) => return Err(sent.err().unwrap_or_else(|| engine.fail(format!("no answer to the load: {e}")))),
        };
        if status != 200 {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(|m| shown(m.as_bytes())))
                .unwrap_or_else(|| shown(&body));
            return Err(engine.fail(format!("it refused the image ({status}): {message}")));
        }
        // A JSON stream: one object a line, `{"stream": "Loaded image: ..."}`, or `{"error": ...}` on failure.
        for line in body.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            let value: serde_json::Value = serde_json::from_slice(line)
                .map_err(|_| engine.fail(format!("an answer not JSON: {}", shown(line))))?;
            let error = value["errorDetail"]["message"].as_str().or_else(|| value["error"].as_str());
            if let Some(error) = error {
                return Err(engine.fail(format!("it refused the image: {}", shown(error.as_bytes()))));
            }
        }
        sent?;
        Ok(None)
    }
}
