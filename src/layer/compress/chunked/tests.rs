//! The zstd:chunked writer read back as each kind of client reads it: as plain zstd, through its TOC (each file's
//! frames alone), and through its tar-split (the exact tar again).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use base64::Engine as _;

use super::*;
use crate::tar::entry::EntryKind;
use crate::tar::writer::TarWriter;

fn entry(path: &str, kind: EntryKind) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
    }
}

/// A rootfs of every kind of entry, with an empty file, a small one, one of exactly one chunk and one of several.
fn rootfs() -> Vec<(Entry, Vec<u8>)> {
    let noise = |n: usize, seed: u32| -> Vec<u8> {
        (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
    };
    let file = |path: &str, data: Vec<u8>| (entry(path, EntryKind::File { size: data.len() as u64 }), data);
    let mut capable = file("usr/bin/ping", b"ping".to_vec());
    capable.0.xattrs.insert("security.capability".into(), vec![1, 0, 0, 2, 0, 0x20, 0, 0]);
    capable.0.mode = 0o4755;
    vec![
        (entry("etc", EntryKind::Directory), vec![]),
        file("etc/empty", vec![]),
        file("etc/hosts", b"127.0.0.1 localhost\n".to_vec()),
        (entry("etc/alias", EntryKind::Symlink { target: b"hosts".to_vec() }), vec![]),
        (entry("usr", EntryKind::Directory), vec![]),
        (entry("usr/bin", EntryKind::Directory), vec![]),
        capable,
        file("usr/bin/one-chunk", noise(CHUNK_BYTES, 1)),
        file("usr/bin/big", noise(CHUNK_BYTES * 2 + 1000, 2)),
        (entry("usr/bin/hard", EntryKind::Hardlink { target: b"usr/bin/big".to_vec() }), vec![]),
        (entry(&format!("usr/{}", "long/".repeat(30)), EntryKind::Directory), vec![]),
        (entry("dev-null", EntryKind::CharDevice { major: 1, minor: 3 }), vec![]),
        file("z-last", b"tail".to_vec()),
    ]
}

fn tar(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (e, data) in entries {
        w.append(e, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

fn chunked(entries: &[(Entry, Vec<u8>)], threads: usize) -> (Vec<u8>, BTreeMap<String, String>) {
    let writer = ZstdChunkedWriter::new(Vec::new(), 3, CompressionPool::new(threads)).unwrap();
    let mut w = TarWriter::new(writer);
    for (e, data) in entries {
        w.append(e, &mut &data[..]).unwrap();
    }
    Box::new(w.finish().unwrap()).finish_annotated().unwrap()
}

fn section(blob: &[u8], position: &str) -> Vec<u8> {
    let numbers: Vec<usize> = position.split(':').map(|n| n.parse().unwrap()).collect();
    let compressed = &blob[numbers[0]..numbers[0] + numbers[1]];
    let text = zstd::decode_all(compressed).unwrap();
    assert_eq!(text.len(), numbers[2]);
    text
}

#[test]
fn plain_zstd_readers_get_the_tar_and_any_thread_count_the_same_bytes() {
    let entries = rootfs();
    let (blob, annotations) = chunked(&entries, 1);
    assert_eq!(zstd::decode_all(&blob[..]).unwrap(), tar(&entries));
    assert_eq!(chunked(&entries, 3), (blob, annotations));
}

#[test]
fn each_file_is_found_through_the_toc_in_frames_of_its_own() {
    let entries = rootfs();
    let (blob, annotations) = chunked(&entries, 2);
    let toc_position = &annotations[trailer::TOC_POSITION];
    let offset: usize = toc_position.split(':').next().unwrap().parse().unwrap();
    let length: usize = toc_position.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(annotations[trailer::TOC_DIGEST], Digest::of(&blob[offset..offset + length]).to_string());
    assert_eq!(annotations[trailer::LEGACY_TOC_DIGEST], annotations[trailer::TOC_DIGEST]);
    let toc: serde_json::Value = serde_json::from_slice(&section(&blob, toc_position)).unwrap();
    let listed: Vec<&serde_json::Value> = toc["entries"].as_array().unwrap().iter().collect();
    let names: Vec<&str> =
        listed.iter().filter(|e| e["type"] != "chunk").map(|e| e["name"].as_str().unwrap()).collect();
    let expected: Vec<String> = entries
        .iter()
        .map(|(e, _)| {
            let name = String::from_utf8(e.path.clone()).unwrap();
            if e.kind == EntryKind::Directory { name + "/" } else { name }
        })
        .collect();
    assert_eq!(names, expected);

    for (e, data) in entries.iter().filter(|(e, data)| matches!(e.kind, EntryKind::File { .. }) && !data.is_empty()) {
        let name = String::from_utf8(e.path.clone()).unwrap();
        let at = listed.iter().position(|l| l["name"] == name.as_str()).unwrap();
        let main = listed[at];
        assert_eq!(main["digest"], Digest::of(data).to_string());
        let (start, end) = (main["offset"].as_u64().unwrap() as usize, main["endOffset"].as_u64().unwrap() as usize);
        assert_eq!(zstd::decode_all(&blob[start..end]).unwrap(), *data, "{name}");
        // Each chunk alone decodes to its part of the file, with the digest the TOC gives it.
        let chunks: Vec<&serde_json::Value> =
            listed[at + 1..].iter().take_while(|l| l["type"] == "chunk").copied().collect();
        assert_eq!(chunks.len() + 1, data.len().div_ceil(CHUNK_BYTES), "{name}");
        for chunk in chunks {
            let (start, end) =
                (chunk["offset"].as_u64().unwrap() as usize, chunk["endOffset"].as_u64().unwrap() as usize);
            let from = chunk["chunkOffset"].as_u64().unwrap() as usize;
            let part = zstd::decode_all(&blob[start..end]).unwrap();
            assert_eq!(part, data[from..from + part.len()]);
            assert_eq!(chunk["chunkDigest"], Digest::of(&part).to_string());
        }
    }
    let ping = listed.iter().find(|l| l["name"] == "usr/bin/ping").unwrap();
    assert_eq!(
        (ping["mode"].as_u64(), ping["xattrs"]["security.capability"].as_str()),
        (Some(0o4755), Some("AQAAAgAgAAA="))
    );
}

#[test]
fn the_tar_split_gives_the_exact_tar_back_from_the_files() {
    let entries = rootfs();
    let (blob, annotations) = chunked(&entries, 2);
    let toc: serde_json::Value = serde_json::from_slice(&section(&blob, &annotations[trailer::TOC_POSITION])).unwrap();
    let split_position = &annotations[trailer::TAR_SPLIT_POSITION];
    let offset: usize = split_position.split(':').next().unwrap().parse().unwrap();
    let length: usize = split_position.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(toc["tarSplitDigest"], Digest::of(&blob[offset..offset + length]).to_string());

    let files: HashMap<Vec<u8>, &Vec<u8>> = entries.iter().map(|(e, data)| (e.path.clone(), data)).collect();
    let mut rebuilt = Vec::new();
    let mut positions = Vec::new();
    for line in String::from_utf8(section(&blob, split_position)).unwrap().lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        positions.push(line["position"].as_u64().unwrap());
        let payload = line["payload"].as_str().map(|p| base64::engine::general_purpose::STANDARD.decode(p).unwrap());
        match line["type"].as_u64() {
            Some(2) => rebuilt.extend_from_slice(&payload.unwrap()),
            Some(1) => {
                let size = line["size"].as_u64().unwrap_or(0);
                if size == 0 {
                    assert!(payload.is_none());
                    continue;
                }
                let data = files[line["name"].as_str().unwrap().as_bytes()];
                let mut crc = Crc64::default();
                crc.update(data);
                assert_eq!(payload.unwrap(), crc.value().to_be_bytes());
                rebuilt.extend_from_slice(data);
            }
            other => panic!("unknown tar-split type {other:?}"),
        }
    }
    assert_eq!(rebuilt, tar(&entries));
    assert_eq!(positions, (0..positions.len() as u64).collect::<Vec<_>>());
}

#[test]
fn an_empty_layer_is_still_a_zstd_stream_with_a_toc() {
    let (blob, annotations) = chunked(&[], 1);
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(&blob[..]).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, vec![0u8; 1024]);
    let toc: serde_json::Value = serde_json::from_slice(&section(&blob, &annotations[trailer::TOC_POSITION])).unwrap();
    assert_eq!(toc["entries"], serde_json::json!([]));
}

#[test]
fn a_name_that_is_not_utf8_is_refused_as_input() {
    let writer = ZstdChunkedWriter::new(Vec::new(), 3, CompressionPool::new(1)).unwrap();
    let mut w = TarWriter::new(writer);
    let err = w.append(&entry("ok", EntryKind::Directory), &mut std::io::empty()).and_then(|()| {
        let bad = Entry { path: b"bad\xff".to_vec(), ..entry("", EntryKind::Fifo) };
        w.append(&bad, &mut std::io::empty())
    });
    let err = err.unwrap_err();
    assert!(crate::tar::reader::input_fault(&err).unwrap().contains("bad\\377"), "{err}");
}

#[test]
fn a_spooled_tar_written_again_gives_the_same_layer() {
    let entries = rootfs();
    let plain = tar(&entries);
    let compressor: Box<dyn FinishWrite<Vec<u8>> + Send> =
        Box::new(ZstdChunkedWriter::new(Vec::new(), 3, CompressionPool::new(2)).unwrap());
    let compressor = rewrite(&plain[..], compressor).unwrap();
    assert_eq!(compressor.finish_annotated().unwrap(), chunked(&entries, 1));
    // A tar the canonical writer does not give back byte for byte: two more zero blocks after its end.
    let mut padded = plain.clone();
    padded.extend_from_slice(&[0u8; 1024]);
    let other: Box<dyn FinishWrite<Vec<u8>> + Send> =
        Box::new(ZstdChunkedWriter::new(Vec::new(), 3, CompressionPool::new(1)).unwrap());
    let err = rewrite(&padded[..], other).err().unwrap();
    assert!(err.to_string().contains("not the same tar"), "{err}");
}
