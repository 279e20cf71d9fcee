//! The OCI runtime config (runtime-spec config.md, `config.json` of a bundle) made from an image config: the process
//! from the image (image-spec conversion.md), everything else as `runc spec` (runc 1.1) writes it, or
//! `runc spec --rootless`. Typed structs with a fixed field order, so one image always gives the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::ImageConfig;

/// The runtime-spec version `runc spec` (runc 1.1) writes.
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Docker's default `PATH`, which engines give a process whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub linux: Linux,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Capabilities,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
}

/// The numeric identity of the container's process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The other groups that list the user as a member, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    pub namespaces: Vec<Namespace>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Resources {
    pub devices: Vec<DeviceRule>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub access: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
}

/// Who runs the bundle: root, or (rootless) the user whose ids the container's root maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Root,
    Rootless { uid: u32, gid: u32 },
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount { destination: destination.into(), kind: kind.into(), source: source.into(), options: strings(options) }
}

impl RuntimeConfig {
    /// The config for `image`, whose process runs as `user` with `args` (entrypoint then cmd), carrying
    /// `annotations` (see [`annotations`]).
    pub fn new(
        image: &ImageConfig,
        args: Vec<String>,
        user: User,
        annotations: BTreeMap<String, String>,
        runner: Runner,
    ) -> RuntimeConfig {
        let mut env = image.config.env.clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        let capabilities = strings(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        let rootless = matches!(runner, Runner::Rootless { .. });
        // A rootless runtime cannot mount a fresh sysfs or use devpts's gid=5 (the group is not mapped): runc spec
        // --rootless binds the host's /sys read-only instead.
        let devpts: &[&str] = if rootless {
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        } else {
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        };
        let sys = if rootless {
            mount("/sys", "none", "/sys", &["rbind", "nosuid", "noexec", "nodev", "ro"])
        } else {
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])
        };
        let mounts = vec![
            mount("/proc", "proc", "proc", &[]),
            mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts", devpts),
            mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            sys,
            mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ];
        let (uid_mappings, gid_mappings, resources, namespaces) = match runner {
            Runner::Root => (
                Vec::new(),
                Vec::new(),
                Some(Resources { devices: vec![DeviceRule { allow: false, access: "rwm".into() }] }),
                strings(&["pid", "network", "ipc", "uts", "mount"]),
            ),
            // The container's root is the invoking user, as `runc spec --rootless` maps it; it keeps the host's
            // network, which an unprivileged user cannot configure.
            Runner::Rootless { uid, gid } => (
                vec![IdMapping { container_id: 0, host_id: uid, size: 1 }],
                vec![IdMapping { container_id: 0, host_id: gid, size: 1 }],
                None,
                strings(&["pid", "ipc", "uts", "mount", "user"]),
            ),
        };
        RuntimeConfig {
            oci_version: OCI_VERSION.into(),
            process: Process {
                // runc spec asks for a terminal; a bundle run by a script or a service has none to give.
                terminal: false,
                user,
                args,
                env,
                cwd: image.config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
                capabilities: Capabilities {
                    bounding: capabilities.clone(),
                    effective: capabilities.clone(),
                    permitted: capabilities.clone(),
                    ambient: capabilities,
                },
                rlimits: vec![Rlimit { kind: "RLIMIT_NOFILE".into(), hard: 1024, soft: 1024 }],
                no_new_privileges: true,
            },
            root: Root { path: "rootfs".into(), readonly: true },
            hostname: "runc".into(),
            mounts,
            linux: Linux {
                uid_mappings,
                gid_mappings,
                resources,
                namespaces: namespaces.into_iter().map(|kind| Namespace { kind }).collect(),
                masked_paths: strings(&[
                    "/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/sys/firmware",
                    "/proc/scsi",
                ]),
                readonly_paths: strings(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
            },
            annotations,
        }
    }
}

/// The process arguments of conversion.md: `Entrypoint` then `Cmd`.
pub fn process_args(image: &ImageConfig) -> Vec<String> {
    let mut args = image.config.entrypoint.clone().unwrap_or_default();
    args.extend(image.config.cmd.clone().unwrap_or_default());
    args
}

/// The bundle's annotations (conversion.md): the manifest's annotations, the config's labels over them, and the
/// `org.opencontainers.image.*` keys conversion.md derives from the config over both.
pub fn annotations(image: &ImageConfig, manifest: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = manifest.clone();
    out.extend(image.config.labels.clone().unwrap_or_default());
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            out.insert(format!("org.opencontainers.image.{key}"), value);
        }
    };
    set("os", Some(image.os.clone()));
    set("architecture", Some(image.architecture.clone()));
    set("variant", image.variant.clone());
    set("author", image.author.clone());
    set("created", image.created.clone());
    set("stopSignal", image.config.stop_signal.clone());
    let ports = image.config.exposed_ports.as_ref().map(|p| p.keys().cloned().collect::<Vec<_>>().join(","));
    set("exposedPorts", ports.filter(|p| !p.is_empty()));
    out
}
