//! `--previous`: a layer whose uncompressed tar is byte for byte one of the previous image's layers takes that
//! layer's blob instead of being compressed again, so a rebuild pays for what changed.
//!
//! A layer's diff_id is known only once its tar is written, so with a previous image each layer is spooled
//! uncompressed to a temporary file (bounded memory, any layer size) and hashed on the way; its compression waits
//! until the diff_id says whether the previous image has it. When the rootfs's first read recorded its files'
//! digests, a layer is spooled as its outline instead, and an outline this machine saw before gives the diff_id
//! without the tar being hashed (see [`crate::layer::outline`]). Meanwhile a thread of its own reads every layer of the
//! previous image, checking its digest and that it decompresses to the diff_id its config claims, and copies the
//! blobs that pass into the staging store: the rootfs pass keeps one core busy, this uses another, so the check
//! costs a rebuild little wall time. A previous blob is taken only when three things hold, so that the output is
//! byte for byte what a cold build writes:
//! - its digest is the one its manifest names,
//! - it decompresses to exactly this layer's tar (its diff_id recomputed, not taken from the previous config),
//! - it begins with the bytes this run's compressor writes first (its first block at this level: a previous image
//!   made with another compression or level is compressed afresh, without a warning).
//!
//! A blob that is missing or fails a check is not reused: the layer is compressed from its spool and a warning says
//! which blob of which image was passed over.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::blobs::{BlobStore, CopyingReader};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::known::{KnownLayer, KnownLayers};
use crate::oci::image::Layer;
use crate::source::{SourceImage, VerifiedLayer};

/// What checking one previous layer found: its blob, staged, or why it cannot be taken.
enum Checked {
    /// `known`: checked by its digest alone, this machine knowing what it decompresses to.
    Staged {
        layer: VerifiedLayer,
        known: bool,
    },
    Refused(String),
}

/// The previous image's layers, checked in the background, by the diff_id their config claims.
pub struct PreviousBlobs {
    reference: String,
    /// diff_id -> index of the first layer claiming it, in `checked`.
    claims: HashMap<Digest, usize>,
    checked: Arc<(Mutex<Vec<Option<Checked>>>, Condvar)>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    /// By the index of the previous layer they are about, so that they read in the image's order whatever order the
    /// layers are ended in, and once each.
    warnings: Mutex<BTreeMap<usize, String>>,
    taken: AtomicUsize,
    taken_known: AtomicUsize,
    recognised: AtomicUsize,
}

impl PreviousBlobs {
    /// Starts checking the layers of `image` that its config gives a diff_id, copying those that pass into a new
    /// blob store at `staging` (the store the image being built is assembled in); blobs that `known` holds facts
    /// about are not decompressed.
    pub fn start(image: SourceImage, staging: &BlobStore, known: &KnownLayers) -> Result<PreviousBlobs> {
        let mut claims = HashMap::new();
        let mut order = Vec::new();
        for layer in &image.image.layers {
            if let Some(diff_id) = &layer.diff_id {
                if !claims.contains_key(diff_id) {
                    claims.insert(diff_id.clone(), order.len());
                    order.push(layer.clone());
                }
            }
        }
        let checked = Arc::new((Mutex::new((0..order.len()).map(|_| None).collect::<Vec<_>>()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let staging = BlobStore::open(staging.root())?;
        let reference = image.reference.clone();
        let known = known.clone();
        let worker = {
            let (checked, stop) = (Arc::clone(&checked), Arc::clone(&stop));
            std::thread::spawn(move || {
                for (index, layer) in order.iter().enumerate() {
                    let result = match stop.load(Ordering::Relaxed) {
                        true => Checked::Refused("not checked: the conversion ended first".into()),
                        false => check(&image, layer, &staging, &known),
                    };
                    let (slots, ready) = &*checked;
                    if let Ok(mut slots) = slots.lock() {
                        slots[index] = Some(result);
                    }
                    ready.notify_all();
                }
            })
        };
        Ok(PreviousBlobs {
            reference,
            claims,
            checked,
            stop,
            worker: Some(worker),
            warnings: Mutex::new(BTreeMap::new()),
            taken: AtomicUsize::new(0),
            taken_known: AtomicUsize::new(0),
            recognised: AtomicUsize::new(0),
        })
    }

    /// Whether the previous image claims a layer with this uncompressed content.
    pub fn has(&self, diff_id: &Digest) -> bool {
        self.claims.contains_key(diff_id)
    }

    /// The previous layer whose tar is `diff_id`, its blob already in the staging store, if it passed its checks
    /// and begins with `leading`; `None` when the layer must be compressed afresh. Waits for the layer's check.
    pub fn take(&self, diff_id: &Digest, leading: &[u8], staging: &BlobStore) -> Result<Option<VerifiedLayer>> {
        let Some(&index) = self.claims.get(diff_id) else {
            return Ok(None);
        };
        let (slots, ready) = &*self.checked;
        let poisoned = |_| Error::Invalid("a thread checking the previous image's layers failed".into());
        let mut slots = slots.lock().map_err(poisoned)?;
        while slots[index].is_none() {
            slots = ready.wait(slots).map_err(poisoned)?;
        }
        let (verified, known) = match &slots[index] {
            Some(Checked::Staged { layer, known }) => (layer.clone(), *known),
            Some(Checked::Refused(problem)) => {
                self.warn(index, format!("{problem}: not reused, compressed afresh"));
                return Ok(None);
            }
            None => unreachable!("waited for above"),
        };
        drop(slots);
        // Another compression or level made it: expected when the user changes either, not worth a warning.
        let mut head = Vec::with_capacity(leading.len());
        staging
            .open_file(&verified.digest)?
            .take(leading.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::io("cannot read blob", staging.path(&verified.digest), e))?;
        if head != leading {
            return Ok(None);
        }
        self.taken.fetch_add(1, Ordering::Relaxed);
        if known {
            self.taken_known.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(verified))
    }

    fn warn(&self, index: usize, problem: String) {
        let line = match problem.contains(&self.reference) {
            true => problem,
            false => format!("previous image {}: {problem}", self.reference),
        };
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.insert(index, line);
        }
    }

    /// How many layers took a previous blob instead of being compressed.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    /// How many of the blobs taken were checked by their digest alone, this machine knowing their content.
    pub fn taken_known(&self) -> usize {
        self.taken_known.load(Ordering::Relaxed)
    }

    /// A layer's diff_id was known from its outline (see [`crate::layer::outline`]): its tar was not hashed.
    pub fn note_recognised(&self) {
        self.recognised.fetch_add(1, Ordering::Relaxed);
    }

    /// How many layers' diff_ids were known from their outlines.
    pub fn recognised(&self) -> usize {
        self.recognised.load(Ordering::Relaxed)
    }

    /// What was passed over and why, one line each, in the previous image's layer order.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.values().cloned().collect()).unwrap_or_default()
    }
}

impl Drop for PreviousBlobs {
    /// The checking thread writes into the staging store: it is stopped and waited for before the store goes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Copies one previous layer's blob into `staging` when its digest and its claimed diff_id both hold. A blob this
/// machine knows (see [`known`](crate::layer::known)) to decompress to the claimed diff_id is only copied, its digest
/// checked on the way; any other is decompressed whole as it is copied, and what that establishes is recorded.
fn check(image: &SourceImage, layer: &Layer, staging: &BlobStore, known: &KnownLayers) -> Checked {
    let descriptor = &layer.descriptor;
    let fact = known.get(&descriptor.digest).filter(|fact| layer.diff_id.as_ref() == Some(&fact.diff_id));
    if let Some(fact) = fact {
        return match staging.copy_checked(image, &descriptor.digest, descriptor.size, &image.reference) {
            Ok(()) => Checked::Staged {
                layer: VerifiedLayer {
                    digest: descriptor.digest.clone(),
                    diff_id: fact.diff_id,
                    size: descriptor.size,
                    media_type: descriptor.media_type.clone(),
                    uncompressed_size: fact.uncompressed_size,
                    stored_media_type: fact.media_type,
                },
                known: true,
            },
            Err(e) => Checked::Refused(e.to_string()),
        };
    }
    let mut blob = match staging.writer() {
        Ok(blob) => blob,
        Err(e) => return Checked::Refused(e.to_string()),
    };
    // The source's reader decodes the whole stream and checks it against the config's diff_id, the claim a match
    // is made on, and the blob against its digest.
    let read = image.read_layer_through(layer, |raw| CopyingReader { inner: raw, copy: &mut blob }, |_| Ok(()));
    match read.and_then(|verified| blob.commit().map(|_| verified)) {
        Ok(verified) => {
            known.record(&verified.digest, &KnownLayer::of(&verified));
            Checked::Staged { layer: verified, known: false }
        }
        Err(e) => Checked::Refused(e.to_string()),
    }
}
