//! Licences as SPDX license expressions (SPDX 2.3 Annex D): a package's licence as its source writes it, a Yocto
//! `LICENSE` (`GPL-2.0-only & (MIT | BSD-3-Clause)`) or an opkg `License` field, translated the way OE-core's
//! `convert_license_to_spdx` does.
//!
//! - Yocto's `&` and `|` become `AND` and `OR`; SPDX's own `AND`, `OR`, `WITH` and parentheses pass as they are.
//! - An identifier of the SPDX License List (the `spdx` crate's copy) is kept, spelled as the list spells it; an
//!   exception after `WITH` must be on the list's exceptions. A `+` suffix is kept, except on GNU licences, whose
//!   `GPL-2.0+` the list spells `GPL-2.0-or-later` (the strict SPDX grammar refuses the former). The deprecated
//!   identifiers that fold an exception into a licence (`GPL-3.0-with-GCC-exception`, the name OE-core's gcc-runtime
//!   declares) are written as the list's deprecation notes say (`GPL-3.0-only WITH GCC-exception-3.1`): the
//!   reference validator reads them as exceptions and refuses them alone.
//! - Any other name (`Proprietary`, an old `GPLv2`, a vendor's own) becomes `LicenseRef-<name>`, characters outside
//!   SPDX's `[A-Za-z0-9.-]` written as `-`; the document then says what each such reference stands for
//!   ([`Declared::Expression`]'s `references`), as SPDX requires of every `LicenseRef-` it uses.
//! - Yocto's `CLOSED` (closed source, no licence text) alone is `NONE`, as OE-core writes it.
//! - Text that still is no valid expression (unbalanced parentheses, an operator with nothing beside it, an unknown
//!   exception) is `NOASSERTION`: the licence is unknown rather than guessed; the raw text stays in the CycloneDX
//!   document as a licence name.

use spdx::{Expression, ParseMode};

/// A licence as an SBOM declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    /// A valid SPDX expression, with the `LicenseRef-` identifiers it uses and the names they stand for.
    Expression { expression: String, references: Vec<LicenseRef> },
    /// No licence: Yocto's `CLOSED`.
    None,
    /// The text is no licence expression that can be trusted.
    NoAssertion,
}

/// A licence that is not on the SPDX License List: the identifier the expression uses and the name the package
/// data gave.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LicenseRef {
    pub id: String,
    pub name: String,
}

impl Declared {
    /// The text of SPDX's `licenseDeclared`.
    pub fn spdx_text(&self) -> &str {
        match self {
            Declared::Expression { expression, .. } => expression,
            Declared::None => "NONE",
            Declared::NoAssertion => "NOASSERTION",
        }
    }
}

/// Translates the licence text of a package source into an SPDX expression.
pub fn declared(license: &str) -> Declared {
    if license.trim() == "CLOSED" {
        return Declared::None;
    }
    let spaced = license.replace('(', " ( ").replace(')', " ) ").replace('|', " | ").replace('&', " & ");
    let mut words = Vec::new();
    let mut references: Vec<LicenseRef> = Vec::new();
    let mut after_with = false;
    for token in spaced.split_whitespace() {
        let word = match token {
            "(" | ")" | "AND" | "OR" => token.to_string(),
            "&" => "AND".into(),
            "|" => "OR".into(),
            "WITH" => {
                after_with = true;
                words.push(token.to_string());
                continue;
            }
            exception if after_with => match spdx::exception_id(exception) {
                Some(id) => id.name.to_string(),
                None => return Declared::NoAssertion,
            },
            name => match listed(name) {
                Some(id) => id,
                None => {
                    let reference = reference(name);
                    if reference.len() == "LicenseRef-".len() {
                        return Declared::NoAssertion;
                    }
                    if !references.iter().any(|r| r.id == reference) {
                        references.push(LicenseRef { id: reference.clone(), name: name.to_string() });
                    }
                    reference
                }
            },
        };
        after_with = false;
        words.push(word);
    }
    let expression = words.join(" ");
    if expression.is_empty() || Expression::parse_mode(&expression, ParseMode::STRICT).is_err() {
        return Declared::NoAssertion;
    }
    references.sort();
    Declared::Expression { expression, references }
}

/// Deprecated identifiers of a licence with an exception, and the expression the SPDX License List replaces each with.
const WITH_EXCEPTION: &[(&str, &str)] = &[
    ("GPL-2.0-with-GCC-exception", "GPL-2.0-only WITH GCC-exception-2.0"),
    ("GPL-2.0-with-autoconf-exception", "GPL-2.0-only WITH Autoconf-exception-2.0"),
    ("GPL-2.0-with-bison-exception", "GPL-2.0-only WITH Bison-exception-2.2"),
    ("GPL-2.0-with-classpath-exception", "GPL-2.0-only WITH Classpath-exception-2.0"),
    ("GPL-2.0-with-font-exception", "GPL-2.0-only WITH Font-exception-2.0"),
    ("GPL-3.0-with-GCC-exception", "GPL-3.0-only WITH GCC-exception-3.1"),
    ("GPL-3.0-with-autoconf-exception", "GPL-3.0-only WITH Autoconf-exception-3.0"),
    ("eCos-2.0", "GPL-2.0-or-later WITH eCos-exception-2.0"),
];

/// `name` as the SPDX License List spells it (`mit` is `MIT`), if the list has it.
fn listed(name: &str) -> Option<String> {
    let (base, plus) = match name.strip_suffix('+') {
        Some(base) => (base, true),
        None => (name, false),
    };
    if base.is_empty() || base.contains('+') {
        return None;
    }
    let canonical = match spdx::license_id(base) {
        Some(id) => id.name,
        // SPDX identifiers match case-insensitively (SPDX 2.3 Annex D.2).
        None => spdx::identifiers::LICENSES.iter().find(|(id, ..)| id.eq_ignore_ascii_case(base))?.0,
    };
    if let Some((_, expression)) = WITH_EXCEPTION.iter().find(|(id, _)| *id == canonical).filter(|_| !plus) {
        return Some(expression.to_string());
    }
    if !plus {
        return Some(canonical.to_string());
    }
    let later = format!("{}-or-later", canonical.trim_end_matches("-only"));
    Some(match spdx::license_id(&later) {
        Some(id) if id.is_gnu() => later,
        _ => format!("{canonical}+"),
    })
}

/// The `LicenseRef-` identifier for a licence name that is not on the list.
fn reference(name: &str) -> String {
    let id: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    let id = id.strip_prefix("LicenseRef-").unwrap_or(&id).to_string();
    format!("LicenseRef-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expression(license: &str) -> String {
        match declared(license) {
            Declared::Expression { expression, .. } => expression,
            other => panic!("{license}: {other:?}"),
        }
    }

    #[test]
    fn yocto_operators_become_spdx_ones() {
        assert_eq!(expression("GPL-2.0-only & MIT"), "GPL-2.0-only AND MIT");
        assert_eq!(expression("GPL-2.0-only&(MIT|BSD-3-Clause)"), "GPL-2.0-only AND ( MIT OR BSD-3-Clause )");
        assert_eq!(
            expression("LGPL-2.1+ | GPL-2.0+ | Apache-1.0+"),
            "LGPL-2.1-or-later OR GPL-2.0-or-later OR Apache-1.0+"
        );
        assert_eq!(
            expression("GPL-3.0-with-GCC-exception & GPL-3.0-only"),
            "GPL-3.0-only WITH GCC-exception-3.1 AND GPL-3.0-only"
        );
        for (id, _) in WITH_EXCEPTION {
            assert!(!expression(id).contains("-with-"), "{id}");
        }
        assert_eq!(expression("Apache-2.0 WITH LLVM-exception"), "Apache-2.0 WITH LLVM-exception");
        assert_eq!(expression("mit"), "MIT");
    }

    #[test]
    fn names_off_the_list_become_declared_references() {
        let Declared::Expression { expression, references } = declared("Proprietary & GPL-2.0-only | vendor_eula")
        else {
            panic!("not an expression");
        };
        assert_eq!(expression, "LicenseRef-Proprietary AND GPL-2.0-only OR LicenseRef-vendor-eula");
        assert_eq!(
            references,
            [
                LicenseRef { id: "LicenseRef-Proprietary".into(), name: "Proprietary".into() },
                LicenseRef { id: "LicenseRef-vendor-eula".into(), name: "vendor_eula".into() },
            ]
        );
        assert_eq!(super::tests::expression("GPLv2"), "LicenseRef-GPLv2");
    }

    #[test]
    fn closed_is_none_and_broken_text_is_no_assertion() {
        assert_eq!(declared("CLOSED"), Declared::None);
        assert_eq!(declared("CLOSED").spdx_text(), "NONE");
        for broken in ["GPL-2.0-only &", "(MIT", "MIT | | BSD-3-Clause", "", "  ", "MIT WITH no-such-exception", "&"] {
            assert_eq!(declared(broken), Declared::NoAssertion, "{broken:?}");
        }
        assert_eq!(declared("(MIT").spdx_text(), "NOASSERTION");
    }
}
