//! Image references as skopeo and podman users write them: `oci:DIR[:TAG]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE[:REF]`; and image names (`myorg/minimal:1.0`) as Docker normalises them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;

/// Where an image is written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// An OCI image layout directory; `tag` is the `org.opencontainers.image.ref.name` in its index.
    Layout { dir: PathBuf, tag: Option<String> },
    /// One archive holding both an OCI layout and Docker's `manifest.json`; `reference` selects or names the image
    /// the way skopeo's `oci-archive:` does (a ref.name).
    OciArchive { file: PathBuf, reference: Option<String> },
    /// The same archive, named the way skopeo's `docker-archive:` does (a Docker image name).
    DockerArchive { file: PathBuf, reference: Option<ImageName> },
    /// A repository on a registry (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`).
    Registry(RegistryRef),
    /// An OCI runtime bundle (`oci-bundle:DIR`, runtime-spec bundle.md): the image unpacked for runc. An output only.
    Bundle { dir: PathBuf },
    /// A running Docker engine (`docker-daemon:NAME[:TAG]`, at `DOCKER_HOST`), the image loaded under NAME. An
    /// output only.
    DockerDaemon { name: ImageName },
}

impl ImageRef {
    /// The local file or directory, for the transports that have one.
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            ImageRef::Layout { dir, .. } => Some(dir),
            ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => Some(file),
            ImageRef::Bundle { dir } => Some(dir),
            ImageRef::Registry(_) | ImageRef::DockerDaemon { .. } => None,
        }
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<ImageRef, Error> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(ImageRef::Registry(rest.parse()?));
        }
        if let Some(name) = text.strip_prefix("docker-daemon:") {
            return Ok(ImageRef::DockerDaemon { name: name.parse()? });
        }
        // A bundle is a directory and nothing more: the whole rest is its path, colons included.
        if let Some(dir) = text.strip_prefix("oci-bundle:") {
            if dir.is_empty() {
                return Err(Error::Invalid(format!("`{text}` names no directory")));
            }
            return Ok(ImageRef::Bundle { dir: PathBuf::from(dir) });
        }
        let (transport, rest) = text.split_once(':').ok_or_else(|| {
            Error::Invalid(format!(
                "`{text}` names no transport: use oci:DIR[:TAG], oci-archive:FILE[:REF] or docker-archive:FILE[:REF]"
            ))
        })?;
        // skopeo splits path and reference at the first colon after the transport.
        let (path, reference) = match rest.split_once(':') {
            Some((path, reference)) => (path, Some(reference.to_string()).filter(|r| !r.is_empty())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(Error::Invalid(format!("`{text}` names no path")));
        }
        let path = PathBuf::from(path);
        match transport {
            "oci" => {
                if let Some(tag) = &reference {
                    check_ref_name(tag)?;
                }
                Ok(ImageRef::Layout { dir: path, tag: reference })
            }
            "oci-archive" => {
                if let Some(tag) = &reference {
                    check_ref_name(tag)?;
                }
                Ok(ImageRef::OciArchive { file: path, reference })
            }
            "docker-archive" => {
                Ok(ImageRef::DockerArchive { file: path, reference: reference.map(|r| r.parse()).transpose()? })
            }
            "docker" => {
                Err(Error::Invalid(format!("`{text}`: the registry transport is written docker://HOST/REPO[:TAG]")))
            }
            other => Err(Error::Invalid(format!(
                "unknown transport `{other}` in `{text}`: use oci:, oci-archive:, docker-archive:, docker://, \
                 oci-bundle: or docker-daemon: (the last two as outputs)"
            ))),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, reference) = match self {
            ImageRef::Registry(registry) => return write!(f, "docker://{registry}"),
            ImageRef::Bundle { dir } => return write!(f, "oci-bundle:{}", dir.display()),
            ImageRef::DockerDaemon { name } => return write!(f, "docker-daemon:{}", name.familiar()),
            ImageRef::Layout { dir, tag } => ("oci", dir, tag.clone()),
            ImageRef::OciArchive { file, reference } => ("oci-archive", file, reference.clone()),
            ImageRef::DockerArchive { file, reference } => {
                ("docker-archive", file, reference.as_ref().map(|r| r.familiar()))
            }
        };
        write!(f, "{transport}:{}", path.display())?;
        if let Some(reference) = reference {
            write!(f, ":{reference}")?;
        }
        Ok(())
    }
}

/// image-layout.md: a ref.name is a tag-like string of letters, digits and `-._:@/+`.
fn check_ref_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b));
    if ok { Ok(()) } else { Err(Error::Invalid(format!("`{name}` is not a valid reference name"))) }
}

/// A Docker image name with a tag, e.g. `myorg/minimal:1.0`, `localhost:5000/app:2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// Registry host, `docker.io` when none is written.
    pub domain: String,
    pub repository: String,
    pub tag: String,
}

impl ImageName {
    /// The name as `docker images` shows it: no `docker.io/` and no `library/`.
    pub fn familiar(&self) -> String {
        let repo = match self.domain.as_str() {
            // distribution/reference FamiliarName: `library/` goes only before a one-component name, or the
            // familiar form would name another repository (`library/a/b` is not `a/b`).
            "docker.io" => match self.repository.strip_prefix("library/") {
                Some(official) if !official.contains('/') => official.to_string(),
                _ => self.repository.clone(),
            },
            domain => format!("{domain}/{}", self.repository),
        };
        format!("{repo}:{}", self.tag)
    }

    /// The repository without the tag, in familiar form (for Docker's `repositories` file).
    pub fn familiar_repository(&self) -> String {
        let familiar = self.familiar();
        familiar[..familiar.len() - self.tag.len() - 1].to_string()
    }
}

impl fmt::Display for ImageName {
    /// The fully qualified form containerd records: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.domain, self.repository, self.tag)
    }
}

impl FromStr for ImageName {
    type Err = Error;

    /// distribution/reference's grammar, without digests (a name written into an archive needs a tag).
    fn from_str(text: &str) -> Result<ImageName, Error> {
        let invalid = |why: &str| Error::Invalid(format!("invalid image name `{text}`: {why}"));
        if text.contains('@') {
            return Err(invalid("a digest cannot name an image being written; use NAME:TAG"));
        }
        let (name, tag) = match text.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (text, "latest"),
        };
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            return Err(invalid("a tag is 1 to 128 letters, digits, `_`, `.` or `-`"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.to_string(), rest),
            _ => ("docker.io".to_string(), name),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !path.split('/').all(component_ok) {
            return Err(invalid("repository names are lowercase letters, digits and `._-`, separated by `/`"));
        }
        let repository =
            if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        Ok(ImageName { domain, repository, tag: tag.to_string() })
    }
}

/// What a registry reference points at in its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryTarget {
    Tag(String),
    Digest(crate::digest::Digest),
}

/// `HOST[:PORT]/REPO[:TAG|@DIGEST]` on a registry speaking the OCI distribution API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef {
    /// Host and port as written (`docker.io` when none is).
    pub domain: String,
    pub repository: String,
    pub target: RegistryTarget,
}

impl RegistryRef {
    /// The host serving the API: Docker Hub's is not the name users write.
    pub fn api_host(&self) -> &str {
        if self.domain == "docker.io" { "registry-1.docker.io" } else { &self.domain }
    }

    /// The manifest reference in API paths: the tag or the digest.
    pub fn manifest_reference(&self) -> String {
        match &self.target {
            RegistryTarget::Tag(tag) => tag.clone(),
            RegistryTarget::Digest(digest) => digest.to_string(),
        }
    }

    /// Whether the host is a loopback address, where plain HTTP is allowed (as Docker does for 127.0.0.0/8).
    pub fn is_loopback(&self) -> bool {
        let host = match self.domain.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.domain,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        match &self.target {
            RegistryTarget::Tag(tag) => write!(f, ":{tag}"),
            RegistryTarget::Digest(digest) => write!(f, "@{digest}"),
        }
    }
}

impl FromStr for RegistryRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<RegistryRef, Error> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.parse::<crate::digest::Digest>()?)),
            None => (text, None),
        };
        let parsed: ImageName = name.parse().map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("docker://{text}: {m}")),
            other => other,
        })?;
        let explicit_tag = name.rsplit_once(':').is_some_and(|(_, tag)| !tag.contains('/'));
        let target = match (digest, explicit_tag) {
            (Some(_), true) => {
                return Err(Error::Invalid(format!("docker://{text}: give a tag or a digest, not both")));
            }
            (Some(digest), false) => RegistryTarget::Digest(digest),
            (None, _) => RegistryTarget::Tag(parsed.tag.clone()),
        };
        Ok(RegistryRef { domain: parsed.domain, repository: parsed.repository, target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_and_engines_are_named_as_outputs() {
        let bundle: ImageRef = "oci-bundle:/run/bundles/app:1".parse().unwrap();
        assert_eq!(bundle, ImageRef::Bundle { dir: PathBuf::from("/run/bundles/app:1") });
        assert_eq!(bundle.to_string(), "oci-bundle:/run/bundles/app:1");
        let daemon: ImageRef = "docker-daemon:myorg/app:1.2".parse().unwrap();
        assert_eq!(daemon.to_string(), "docker-daemon:myorg/app:1.2");
        assert_eq!(daemon.path(), None);
        assert!("oci-bundle:".parse::<ImageRef>().is_err());
        assert!("docker-daemon:UPPER/case".parse::<ImageRef>().is_err());
    }

    #[test]
    fn names_normalise_like_docker() {
        let n: ImageName = "busybox".parse().unwrap();
        assert_eq!((n.to_string(), n.familiar()), ("docker.io/library/busybox:latest".into(), "busybox:latest".into()));
        let n: ImageName = "myorg/minimal:1.0".parse().unwrap();
        assert_eq!(n.to_string(), "docker.io/myorg/minimal:1.0");
        assert_eq!(n.familiar_repository(), "myorg/minimal");
        let n: ImageName = "localhost:5000/app/x:2".parse().unwrap();
        assert_eq!((n.domain.as_str(), n.familiar()), ("localhost:5000", "localhost:5000/app/x:2".into()));
        assert!("My/App".parse::<ImageName>().is_err());
        assert!("app@sha256:abc".parse::<ImageName>().is_err());
    }

    #[test]
    fn familiar_names_name_the_same_repository() {
        // Found by fuzzing (tests/data/fuzz/reference): `library/library/r` was shown as `library/r`.
        for (text, familiar) in [
            ("library/library/r:1", "library/library/r:1"),
            ("docker.io/library/a/b:1", "library/a/b:1"),
            ("library/busybox:1", "busybox:1"),
        ] {
            let n: ImageName = text.parse().unwrap();
            assert_eq!(n.familiar(), familiar);
            assert_eq!(n.familiar().parse::<ImageName>().unwrap(), n);
        }
    }

    #[test]
    fn references_split_at_the_first_colon_like_skopeo() {
        assert_eq!(
            "oci:out:1.0".parse::<ImageRef>().unwrap(),
            ImageRef::Layout { dir: "out".into(), tag: Some("1.0".into()) }
        );
        let r: ImageRef = "docker-archive:img.tar:myorg/minimal:1.0".parse().unwrap();
        assert_eq!(r.to_string(), "docker-archive:img.tar:myorg/minimal:1.0");
        assert_eq!("oci-archive:x.tar".parse::<ImageRef>().unwrap().to_string(), "oci-archive:x.tar");
        assert!("x.tar".parse::<ImageRef>().unwrap_err().to_string().contains("names no transport"));
        assert!("tarball:x".parse::<ImageRef>().is_err());
    }

    #[test]
    fn registry_references_parse_with_tags_digests_and_ports() {
        let r: ImageRef = "docker://127.0.0.1:5000/team/app:1.0".parse().unwrap();
        let ImageRef::Registry(r) = r else { panic!("not a registry reference") };
        assert_eq!((r.domain.as_str(), r.repository.as_str()), ("127.0.0.1:5000", "team/app"));
        assert_eq!(r.target, RegistryTarget::Tag("1.0".into()));
        assert!(r.is_loopback());
        let d = format!("localhost:5000/app@{}", crate::digest::Digest::of(b""));
        let r: RegistryRef = d.parse().unwrap();
        assert!(matches!(r.target, RegistryTarget::Digest(_)) && r.is_loopback());
        let r: RegistryRef = "myorg/app".parse().unwrap();
        assert_eq!((r.api_host(), r.to_string().as_str()), ("registry-1.docker.io", "docker.io/myorg/app:latest"));
        assert!(!"ghcr.io/o/a:1".parse::<RegistryRef>().unwrap().is_loopback());
    }
}
