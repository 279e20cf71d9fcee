//! The top-level fields of a JSON document that tell which SBOM format it is, read as a stream: the rest of a
//! document of hundreds of MiB is parsed (so that it must be valid JSON) but never held in memory.

use std::fmt;
use std::io::Read;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields that tell the format, as found (each at most once).
#[derive(Debug, Default)]
pub(super) struct Head {
    /// SPDX 2: `spdxVersion`.
    pub spdx_version: Option<Word>,
    /// CycloneDX: `bomFormat` and `specVersion`.
    pub bom_format: Option<Word>,
    pub spec_version: Option<Word>,
    /// SPDX 3 JSON-LD: `@context`, and whether `@graph` is an array.
    pub context: Option<Context>,
    pub graph: Option<bool>,
}

/// A field's value where a string is expected: the string, or what was there instead.
#[derive(Debug)]
pub(super) enum Word {
    Text(String),
    Other(&'static str),
}

impl Word {
    /// The string, or a problem naming `field`.
    pub fn text(&self, field: &str) -> Result<&str, String> {
        match self {
            Word::Text(text) => Ok(text),
            Word::Other(what) => Err(format!("a JSON document whose {field} is {what}, not a string")),
        }
    }
}

/// A JSON-LD `@context`: whether it names SPDX 3's context (as a string, or among the strings of an array).
#[derive(Debug)]
pub(super) struct Context {
    pub spdx3: bool,
}

/// Text from the document, made safe and short for a message.
pub(super) fn shown(text: &str) -> String {
    crate::error::display_text(text, 100)
}

impl Head {
    /// Reads a whole JSON document, which must be an object, keeping only its format fields.
    pub fn read(reader: impl Read) -> Result<Head, String> {
        let mut json = serde_json::Deserializer::from_reader(reader);
        let head = json.deserialize_map(HeadVisitor).map_err(json_problem)?;
        json.end().map_err(json_problem)?;
        Ok(head)
    }
}

fn json_problem(err: serde_json::Error) -> String {
    match err.classify() {
        serde_json::error::Category::Io => format!("cannot read it: {err}"),
        serde_json::error::Category::Data => format!("a JSON document that is not an SBOM: {err}"),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("not JSON: {err}"),
    }
}

/// The top-level keys that matter; every other key's value is parsed and dropped.
enum Key {
    SpdxVersion,
    BomFormat,
    SpecVersion,
    Context,
    Graph,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "spdxVersion" => Key::SpdxVersion,
                    "bomFormat" => Key::BomFormat,
                    "specVersion" => Key::SpecVersion,
                    "@context" => Key::Context,
                    "@graph" => Key::Graph,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::custom(format!("the key `{key}` appears twice")));
            }
            *slot = Some(value);
            Ok(())
        }
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::SpdxVersion => once(&mut head.spdx_version, map.next_value()?, "spdxVersion")?,
                Key::BomFormat => once(&mut head.bom_format, map.next_value()?, "bomFormat")?,
                Key::SpecVersion => once(&mut head.spec_version, map.next_value()?, "specVersion")?,
                Key::Context => once(&mut head.context, map.next_value()?, "@context")?,
                Key::Graph => once(&mut head.graph, map.next_value::<Graph>()?.0, "@graph")?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }
}

/// What a value that is not a string is, for messages; its content is parsed and dropped.
struct Kind;

impl<'de> Visitor<'de> for Kind {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<&'static str, E> {
        Ok("a boolean")
    }
    fn visit_i64<E>(self, _: i64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_u64<E>(self, _: u64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_f64<E>(self, _: f64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_str<E>(self, _: &str) -> Result<&'static str, E> {
        Ok("a string")
    }
    fn visit_unit<E>(self) -> Result<&'static str, E> {
        Ok("null")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<&'static str, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok("an array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<&'static str, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok("an object")
    }
}

impl<'de> de::Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Word, D::Error> {
        struct WordVisitor;
        impl<'de> Visitor<'de> for WordVisitor {
            type Value = Word;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, text: &str) -> Result<Word, E> {
                Ok(Word::Text(text.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Word, E> {
                Kind.visit_bool(v).map(Word::Other)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Word, E> {
                Kind.visit_i64(v).map(Word::Other)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Word, E> {
                Kind.visit_u64(v).map(Word::Other)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Word, E> {
                Kind.visit_f64(v).map(Word::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Word, E> {
                Kind.visit_unit().map(Word::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Word, A::Error> {
                Kind.visit_seq(seq).map(Word::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Word, A::Error> {
                Kind.visit_map(map).map(Word::Other)
            }
        }
        deserializer.deserialize_any(WordVisitor)
    }
}

/// Whether a context IRI is SPDX 3's (`https://spdx.org/rdf/3.0.1/spdx-context.jsonld`).
fn is_spdx3_context(iri: &str) -> bool {
    let rest = iri.strip_prefix("https://").or_else(|| iri.strip_prefix("http://")).unwrap_or("");
    rest.starts_with("spdx.org/rdf/3.")
}

impl<'de> de::Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Context, D::Error> {
        struct ContextVisitor;
        impl<'de> Visitor<'de> for ContextVisitor {
            type Value = Context;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON-LD @context")
            }
            fn visit_str<E>(self, iri: &str) -> Result<Context, E> {
                Ok(Context { spdx3: is_spdx3_context(iri) })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Context, A::Error> {
                let mut spdx3 = false;
                while let Some(word) = seq.next_element::<Word>()? {
                    spdx3 |= matches!(word, Word::Text(iri) if is_spdx3_context(&iri));
                }
                Ok(Context { spdx3 })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Context, A::Error> {
                Kind.visit_map(map).map(|_| Context { spdx3: false })
            }
            fn visit_unit<E>(self) -> Result<Context, E> {
                Ok(Context { spdx3: false })
            }
        }
        deserializer.deserialize_any(ContextVisitor)
    }
}

/// Whether `@graph` is an array; its elements are parsed and dropped.
struct Graph(bool);

impl<'de> de::Deserialize<'de> for Graph {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Graph, D::Error> {
        deserializer.deserialize_any(Kind).map(|kind| Graph(kind == "an array"))
    }
}
