//! The one thing every layer compressor shares: a `Write` that must be told where the stream ends (to write its
//! trailer) and then hands back the writer below it. Its own module, below `compression` and the parallel
//! compressors that implement it, so that none of them imports another's concept.

use std::io::{self, Write};

/// A compressor that must be told when the stream ends, returning the inner writer.
pub trait FinishWrite<W>: Write {
    fn finish_stream(self: Box<Self>) -> io::Result<W>;
}

pub mod gzip;
pub mod pool;
pub mod zstd;
