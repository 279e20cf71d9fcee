//! Input compression: recognising a rootfs's (or a layer's) format by its first bytes and decoding it, every
//! concatenated member or stream included, within memory limits.

use std::fmt;
use std::io::{self, Read};

/// The compression of an input stream, recognised by content, never by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputCompression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

/// How many leading bytes [`InputCompression::sniff`] needs.
pub const SNIFF_LEN: usize = 6;

/// The most memory the xz decoder may use. `xz -9` (and `-9e`) needs 65 MiB to decode (its 64 MiB dictionary);
/// a stream declaring a larger dictionary (up to 4 GiB) is refused rather than allocated.
pub const XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// The largest zstd window accepted, as a power of two: 2^27 = 128 MiB, libzstd's own default decoding limit
/// (ZSTD_WINDOWLOG_LIMIT_DEFAULT); `zstd --long=31` input needs `--memory` with zstd itself and is refused here.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

impl InputCompression {
    /// Recognises the format from the first bytes, or says which unsupported format it is.
    pub fn sniff(head: &[u8]) -> Result<InputCompression, String> {
        Ok(match head {
            [0x1f, 0x8b, ..] => InputCompression::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => InputCompression::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => InputCompression::Zstd,
            [b'B', b'Z', b'h', ..] => InputCompression::Bzip2,
            [0x04, 0x22, 0x4d, 0x18, ..] => {
                return Err("lz4-compressed input is not supported: decompress it first".into());
            }
            [b'P', b'K', 0x03, 0x04, ..] => {
                return Err("this is a zip archive, not a tar archive".into());
            }
            [0x5d, 0x00, 0x00, ..] => {
                return Err("lzma (legacy .lzma) input is not supported: use xz".into());
            }
            _ => InputCompression::None,
        })
    }

    /// Wraps `raw` in the decoder for this format. Every decoder reads all concatenated members/streams,
    /// as pigz, pixz and pbzip2 write them.
    pub fn decoder<'a>(self, raw: impl Read + Send + 'a) -> Box<dyn Read + Send + 'a> {
        match self {
            InputCompression::None => Box::new(raw),
            InputCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(raw))),
            // liblzma's parallel decoder handles one stream only (../shared/CRATES.md): a single-threaded stream
            // decoder with CONCATENATED reads them all, within a memory limit.
            InputCompression::Xz => {
                match liblzma::stream::Stream::new_stream_decoder(XZ_MEMORY_LIMIT, liblzma::stream::CONCATENATED) {
                    Ok(stream) => {
                        Box::new(XzLimitReport(liblzma::read::XzDecoder::new_stream(io::BufReader::new(raw), stream)))
                    }
                    Err(err) => Box::new(FailingReader(Some(io::Error::other(err)))),
                }
            }
            InputCompression::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(raw).and_then(|mut decoder| {
                    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                    Ok(decoder)
                });
                match decoder {
                    Ok(decoder) => Box::new(ZstdLimitReport(decoder)),
                    Err(err) => Box::new(FailingReader(Some(err))),
                }
            }
            InputCompression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(io::BufReader::new(raw))),
        }
    }
}

impl fmt::Display for InputCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputCompression::None => "uncompressed",
            InputCompression::Gzip => "gzip",
            InputCompression::Xz => "xz",
            InputCompression::Zstd => "zstd",
            InputCompression::Bzip2 => "bzip2",
        })
    }
}

struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| io::Error::other("decoder failed to start")))
    }
}

/// Says which limit a refused xz stream hit: liblzma only says "memory limit reached".
struct XzLimitReport<R>(R);

impl<R: Read> Read for XzLimitReport<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let lzma = e.get_ref().and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>());
            if matches!(lzma, Some(liblzma::stream::Error::MemLimit)) {
                io::Error::other(format!(
                    "the xz stream needs more than {} MiB to decode (its dictionary is too large)",
                    XZ_MEMORY_LIMIT >> 20
                ))
            } else {
                e
            }
        })
    }
}

/// Says which limit a refused zstd frame hit: libzstd only says "Frame requires too much memory for decoding"
/// (frameParameter_windowTooLarge) when a frame declares a window past [`ZSTD_WINDOW_LOG_MAX`].
struct ZstdLimitReport<R>(R);

impl<R: Read> Read for ZstdLimitReport<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.to_string().contains("too much memory") {
                io::Error::other(format!(
                    "the zstd frame needs a window larger than the {} MiB accepted",
                    (1u64 << ZSTD_WINDOW_LOG_MAX) >> 20
                ))
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::LayerCompression;
    use std::io::Write;

    fn roundtrip(compression: LayerCompression, threads: usize, data: &[u8]) -> Vec<u8> {
        let mut enc = compression.encoder(Vec::new(), compression.default_level(), threads, None).unwrap();
        enc.write_all(data).unwrap();
        enc.finish_stream().unwrap()
    }

    fn sample() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 % 17).collect()
    }

    #[test]
    fn sniffing_recognises_each_format_by_content() {
        assert_eq!(InputCompression::sniff(&[0x1f, 0x8b, 8, 0, 0, 0]), Ok(InputCompression::Gzip));
        assert_eq!(InputCompression::sniff(b"\xfd7zXZ\0"), Ok(InputCompression::Xz));
        assert_eq!(InputCompression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]), Ok(InputCompression::Zstd));
        assert_eq!(InputCompression::sniff(b"BZh91AY"), Ok(InputCompression::Bzip2));
        assert_eq!(InputCompression::sniff(b"bin/\0\0"), Ok(InputCompression::None));
        assert!(InputCompression::sniff(&[0x04, 0x22, 0x4d, 0x18, 0, 0]).is_err());
    }

    #[test]
    fn zstd_layers_are_identical_for_one_and_two_threads_and_decode() {
        let data = sample();
        let one = roundtrip(LayerCompression::Zstd, 1, &data);
        let two = roundtrip(LayerCompression::Zstd, 2, &data);
        assert_eq!(one, two);
        let mut back = Vec::new();
        InputCompression::Zstd.decoder(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn concatenated_gzip_members_all_decode() {
        let data = sample();
        let mut joined = roundtrip(LayerCompression::Gzip, 1, &data[..1000]);
        joined.extend(roundtrip(LayerCompression::Gzip, 1, &data[1000..]));
        let mut back = Vec::new();
        InputCompression::Gzip.decoder(&joined[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn level_ranges_are_checked() {
        assert!(LayerCompression::Gzip.check_level(10).is_err());
        assert!(LayerCompression::Zstd.check_level(19).is_ok());
        assert!(LayerCompression::Zstd.check_level(0).is_err());
    }
}
